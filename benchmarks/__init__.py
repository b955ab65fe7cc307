"""The operator benchmark suite behind `edgeward bench`."""
