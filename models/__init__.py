"""Architectures, training, export, engine builds: simulator data to registered models."""
