"""sim traffic."""
