"""A corpus of SUMO test networks, built by netconvert and randomTrips.py (see generate.py)."""
