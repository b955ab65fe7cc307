"""`edgeward cloud`: run the Ray Serve cloud tier and ask it how it is."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from cloud.flywheel.cli import register_flywheel
from cloud.review_desk.users_cli import register_users
from shared.config import CloudConfig, load_config
from shared.errors import EdgewardError

log = logging.getLogger(__name__)


def _config(path: Path | None) -> CloudConfig:
    return load_config(path, CloudConfig) if path else CloudConfig()


def _up(args: argparse.Namespace) -> int:
    from cloud.runtime import LocalCloud

    config = _config(args.config)
    stop = threading.Event()

    def stop_on_signals() -> None:
        # ray.init installs its own SIGTERM handler in the driver, which dies with a trace and
        # leaves the node's temp folder behind. Ours goes in before the start and again right
        # after ray.init, so a stop that comes while the app deploys (systemd, `docker stop`, a
        # deleted pod) also shuts down cleanly, once the start is done. During ray.init itself
        # (a few seconds) Ray's handler still takes it.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

    def ray_started() -> None:
        stop_on_signals()
        print("edgeward cloud: Ray node up, deploying the app", flush=True)

    stop_on_signals()
    cloud = LocalCloud(
        config,
        num_cpus=args.num_cpus,
        with_bridge=not args.no_bridge,
        host=args.host,
        insecure_dev=args.insecure_dev,
        on_ray_started=ray_started,
    )
    with cloud:
        print(
            f"edgeward cloud: serving on {cloud.http_url} (HTTP) and {cloud.grpc_target} (gRPC); "
            "Ctrl-C stops",
            flush=True,
        )
        while not stop.wait(1.0):
            pass
        print("edgeward cloud: shutting down", flush=True)
    return 0


def _get(url: str, timeout: float) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _status(args: argparse.Namespace) -> int:
    config = _config(args.config)
    base = args.url or f"http://127.0.0.1:{config.http_port}"
    try:
        code, ready = _get(f"{base}/readyz", args.timeout)
        _, bridge = _get(f"{base}/v1/bridge", args.timeout)
        _, nodes = _get(f"{base}/v1/nodes", args.timeout)
        _, review = _get(f"{base}/v1/review", args.timeout)
    except (OSError, ValueError) as exc:
        raise EdgewardError(
            f"cloud tier at {base} is not reachable ({exc}); start it with `edgeward cloud up`"
        ) from None
    report = {
        "url": base,
        "ready": ready,
        "bridge": bridge,
        "nodes": nodes.get("nodes", []),
        "open_review_cases": len(review.get("cases", [])),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        state = "ready" if code == 200 else "NOT READY"
        print(f"cloud tier {base}: {state} ({ready.get('model_version') or ready.get('reason')})")
        print(f"mqtt bridge: {json.dumps(bridge)}")
        print(f"open review cases: {report['open_review_cases']}")
        for node in report["nodes"]:
            print(f"  node {node['node_id']} ({node['kind']}): {node['state']}")
    return 0 if code == 200 else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "cloud",
        help="run the Ray Serve cloud tier",
        description=(
            "The cloud tier: a Ray Serve application with the batched grader + Grad-CAM, HTTP and "
            "gRPC ingress, the human review queue and the MQTT bridge."
        ),
    )
    cmds = p.add_subparsers(dest="cloud_command", metavar="COMMAND")
    up = cmds.add_parser(
        "up",
        help="start a local Ray sized to this machine and serve until Ctrl-C",
        description=(
            "Start an embedded Ray (all CPUs of this machine), deploy the cloud application with "
            "HTTP on config.http_port and gRPC on config.grpc_port, and serve until Ctrl-C or "
            "SIGTERM; then shut Serve and Ray down. On a cluster use deploy/ray/serve.yaml."
        ),
    )
    up.add_argument("--config", type=Path, help="cloud config YAML (default: built-in defaults)")
    up.add_argument("--num-cpus", type=int, help="CPUs for Ray (default: all of this machine)")
    up.add_argument("--host", default="127.0.0.1", help="HTTP bind address (0.0.0.0 for all)")
    up.add_argument(
        "--no-bridge", action="store_true", help="do not start the MQTT bridge (no broker needed)"
    )
    up.add_argument(
        "--insecure-dev",
        action="store_true",
        help="development only: serve the HTTP API with no API keys (every route open); "
        "without it the tier refuses to start unless EDGEWARD_CLOUD_API_KEY_FILE or "
        "EDGEWARD_CLOUD_API_KEYS is set",
    )
    up.set_defaults(handler=_up)
    st = cmds.add_parser(
        "status",
        help="readiness, MQTT bridge, gateway nodes and review backlog of a running tier",
        description="Ask a running cloud tier over HTTP; exit code 1 when it is not ready.",
    )
    st.add_argument("--config", type=Path, help="cloud config YAML (for the HTTP port)")
    st.add_argument("--url", help="base URL instead of http://127.0.0.1:<http_port>")
    st.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTP call")
    st.add_argument("--json", action="store_true", help="print the report as JSON")
    st.set_defaults(handler=_status)
    register_users(cmds)
    register_flywheel(cmds)

    def _help(_args: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(handler=_help)
