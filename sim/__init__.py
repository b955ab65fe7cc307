"""Digital twins: synthetic fundus scans and DICOM, SUMO traffic, fault injection, the demo."""
