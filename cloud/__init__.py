"""The cloud tier: one Ray Serve application (grader, coordinator, MQTT bridge, review queue)."""
