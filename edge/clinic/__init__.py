"""edge clinic."""
