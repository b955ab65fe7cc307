"""edge backends."""
