"""The gateway tier (Jetson-class): imports shared/ only, never torch, ray or cloud/."""
