"""The SUMO traffic twin.

scenario.py  generated grids/arterials or user networks, checked with clear errors
demand.py    seeded trips between fringe edges (steady, rush, asymmetric)
network.py   junctions, approaches, links and conflicts derived from the network file
harness.py   one run: SUMO under TraCI, a controller stepped every second, summary + chart
controllers.py  the Controller protocol, SimContext and the SUMO-program baselines
traci_port.py   the edge SignalPort over TraCI and the signal-state recorder
safety.py    checks recorded signal states against SignalSafety
faults.py    fault specs and the schedule controllers see
camera.py    approach cameras (conditions, faults) and their ground truth
dataset.py   (frame, truth) samples from runs, for the counter model
compare.py   controllers over seeds: mean and spread
"""
