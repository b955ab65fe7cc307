"""A real Orthanc PACS for one test: the runner lives in sim/pacs.py (the demo starts one too)."""

from sim.pacs import AET, DICOMWEB, Orthanc, orthanc_binary

__all__ = ["AET", "DICOMWEB", "Orthanc", "orthanc_binary"]
