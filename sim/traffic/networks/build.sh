#!/usr/bin/env bash
# Rebuild the irregular test network and its demand from the plain XML beside this script.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=../../..
"$ROOT/.venv/bin/netconvert" -n irregular.nod.xml -e irregular.edg.xml --crossings.guess \
  --no-turnarounds --tls.yellow.time 4 --tls.allred.time 2 --offset.disable-normalization \
  -o irregular.net.xml
"$ROOT/.venv/bin/python" - <<'PY'
from pathlib import Path
from sim.traffic.demand import generate_trips
from sim.traffic.network import read_net

net = read_net(Path("irregular.net.xml"))
generate_trips(net, Path("irregular.trips.xml"), profile="steady", seconds=1800,
               veh_per_hour=220, seed=7)
PY
