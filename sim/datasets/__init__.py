"""The models' training data, rendered from the twins and written where the factory reads it.

Each renderer is registered under the `edgeward.datasets` entry-point group (pyproject.toml),
so `edgeward models build` finds it without importing sim/. `edgeward sim datasets` renders
them all ahead of time.
"""
