"""`edgeward models import`: bring a model trained elsewhere under edgeward's checks."""
