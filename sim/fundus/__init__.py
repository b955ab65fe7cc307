"""The retinal digital twin: synthetic fundus photographs, DICOM files and non-fundus inputs."""
