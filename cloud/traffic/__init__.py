"""cloud traffic."""
