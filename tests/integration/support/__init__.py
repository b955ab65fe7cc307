"""Real helper services for integration tests (started on free loopback ports)."""
