"""Scenarios that feed the flywheel: shifted clinic populations, logged through real models."""
