"""sim fundus."""
