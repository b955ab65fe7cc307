#!/bin/bash
# Build the cloud image and run its CLI inside it (`make cloud-image`; not part of `make test`).
# The base is Docker Hub's python image where it can be pulled, else a Debian base built from
# Debian's own packages (debian-base.sh); PyTorch comes from the CPU-only index where reachable.
#   deploy/docker/build-cloud-image.sh [TAG]        (CLOUD_BASE=image overrides the base)
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-edgeward/cloud:dev}
base=${CLOUD_BASE:-python:3.11-slim-bookworm}
if ! docker info >/dev/null 2>&1; then
    echo "no Docker daemon answers: start one (sudo systemctl start docker; in a container" \
        "without systemd: sudo dockerd --storage-driver=overlay2 --iptables=false --bridge=none &)" \
        "and run make cloud-image again" >&2
    exit 1
fi
if ! docker image inspect "$base" >/dev/null 2>&1 \
    && ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
    fallback=edgeward/debian-python:bookworm
    if ! docker image inspect "$fallback" >/dev/null 2>&1; then
        echo "cannot pull $base: building $fallback from Debian's own packages"
        deploy/docker/debian-base.sh "$fallback"
    fi
    base=$fallback
fi
index=https://download.pytorch.org/whl/cpu
if ! curl -sf -o /dev/null --max-time 10 "$index/torch/"; then
    echo "$index cannot be reached: the image gets PyPI's torch (with its CUDA libraries)"
    index=
fi
# pip inside the build trusts what pip trusts here (behind a TLS-inspecting proxy, its CA)
ca=${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}
if [ -n "$ca" ] && [ -s "$ca" ]; then cp "$ca" deploy/docker/build-ca.crt; else
    : >deploy/docker/build-ca.crt; fi
trap 'rm -f deploy/docker/build-ca.crt' EXIT
docker build --network host --build-arg BASE="$base" --build-arg TORCH_INDEX="$index" \
    -f deploy/docker/Dockerfile.cloud -t "$tag" .
docker run --rm --network host "$tag" edgeward --help >/dev/null
docker run --rm --network host "$tag" edgeward cloud up --help
echo "built $tag on $base; its CLI starts"

# With models built (make models), the image serves them: ready, one graded scan, a clean stop.
if [ ! -d registry/fundus-grader ] || [ ! -x .venv/bin/python ]; then
    echo "no models in ./registry (make models): the serving check is skipped"
    exit 0
fi
ports=$(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
read -r http grpc <<<"$ports"
work=$(mktemp -d /tmp/edgeward-image-XXXXXX)
chmod 755 "$work"
printf 'role: cloud\ndata_dir: /tmp/cloud\nregistry_dir: registry\nhttp_port: %s\ngrpc_port: %s\n' \
    "$http" "$grpc" >"$work/cloud.yaml"
chmod 644 "$work/cloud.yaml"
name=edgeward-image-check-$$
trap 'docker rm -f "$name" >/dev/null 2>&1; rm -rf "$work" deploy/docker/build-ca.crt' EXIT
docker run -d --name "$name" --network host -v "$PWD/registry:/home/ray/edgeward/registry:ro" \
    -v "$work/cloud.yaml:/etc/edgeward/cloud.yaml:ro" "$tag" \
    edgeward cloud up --config /etc/edgeward/cloud.yaml --no-bridge --insecure-dev >/dev/null
for _ in $(seq 120); do
    curl -sf -o /dev/null "http://127.0.0.1:$http/readyz" && break
    sleep 2
done
if ! curl -sf -o /dev/null "http://127.0.0.1:$http/readyz"; then
    docker logs "$name" 2>&1 | tail -20
    echo "the image did not become ready on port $http in 4 minutes (its log is above)" >&2
    exit 1
fi
scan="$work/scan.jpg"
.venv/bin/python -c "import cv2, sys; from sim.fundus.generator import generate_sample
cv2.imwrite(sys.argv[1], generate_sample(7, 1, size=768).image_bgr)" "$scan"
curl -sf -X POST --data-binary @"$scan" -H 'Content-Type: image/jpeg' -H 'X-Scan-Id: image-check' \
    "http://127.0.0.1:$http/v1/grade" | python3 -c 'import json, sys
d = json.load(sys.stdin)
assert d["heatmap_png"], "no heatmap in the answer"
print("graded a scan in the image:", d["verdict"], "p(referable) %.3f," % d["referable_probability"],
      "with its heatmap")'
docker stop -t 60 "$name" >/dev/null
code=$(docker inspect "$name" --format '{{.State.ExitCode}}')
[ "$code" = 0 ] || { echo "edgeward cloud up in the image exited $code on SIGTERM" >&2; exit 1; }
echo "the image served the registry and stopped cleanly on SIGTERM"
