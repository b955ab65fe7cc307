"""`edgeward cloud flywheel`: the operator's handles on retraining and edge model rollout.

Retraining and edge canaries change what patients are judged by, so they run when an operator (or
a scheduler such as cron or a Kubernetes CronJob calling this command) asks, never on their own.
"""

from __future__ import annotations

import argparse
import json
import shutil
import uuid
from pathlib import Path

from cloud.flywheel.delivery import ModelDelivery
from cloud.flywheel.edge_rollout import RolloutResult, rollback_edge, start_edge_canary
from shared.config import CloudConfig, load_config
from shared.config.flywheel import FlywheelConfig
from shared.errors import EdgewardError
from shared.registry import Registry


def _cloud(path: Path | None) -> CloudConfig:
    return load_config(path, CloudConfig) if path else CloudConfig()


def _flywheel(path: Path | None) -> FlywheelConfig:
    return load_config(path, FlywheelConfig) if path else FlywheelConfig()


def _gateways(args: argparse.Namespace, config: CloudConfig) -> list[str]:
    if args.gateway:
        return list(args.gateway)
    canary = config.grader.canary
    if canary is None or not canary.gateways:
        raise EdgewardError(
            "no gateways to send the model to: pass --gateway ID (repeatable) or set "
            "grader.canary.gateways in the cloud config"
        )
    return list(canary.gateways)


def _report(result: RolloutResult) -> int:
    print(f"{result.model_id}: applied on {', '.join(result.applied) or 'none'}")
    for gateway, reason in sorted(result.refused.items()):
        print(f"  REFUSED by {gateway}: {reason}")
    if result.silent:
        print(
            f"  no answer yet from {', '.join(result.silent)} (offline gateways get the update "
            "from the broker when they reconnect)"
        )
    return 1 if result.refused else 0


def _rollout(args: argparse.Namespace) -> int:
    config = _cloud(args.config)
    gateways = _gateways(args, config)
    registry = Registry(args.registry or config.registry_dir)
    delivery = ModelDelivery(config.mqtt).start()
    try:
        if args.flywheel_command == "edge-canary":
            result = start_edge_canary(delivery, registry, args.model, gateways, args.timeout)
        else:
            result = rollback_edge(
                delivery, registry, args.model, gateways, reason=args.reason, timeout=args.timeout
            )
    finally:
        delivery.stop()
    return _report(result)


def _labels_since_last_build(registry: Registry, name: str, reviewed: int) -> int:
    champion = registry.champion(name)
    if champion is None:
        raise EdgewardError(f"no champion of {name!r} in {registry.root}: build or promote one")
    return reviewed - int(champion.data_snapshot.get("reviewed_cases", 0) or 0)


def _retrain(args: argparse.Namespace) -> int:
    from cloud.flywheel.retrain import reviewed_from_store, run_retraining, should_retrain
    from cloud.store import CloudStore

    config = _cloud(args.config)
    triggers = _flywheel(args.flywheel).retrain
    registry = Registry(args.registry or config.registry_dir)
    store = CloudStore(config.data_dir)
    try:
        reviewed = reviewed_from_store(store)
    finally:
        store.close()
    new = _labels_since_last_build(registry, args.model, len(reviewed))
    due, why = should_retrain(None, new, triggers)
    if not (due or args.force):
        print(f"{args.model}: not retraining ({why}); --force retrains anyway")
        return 0
    import ray

    from cloud.runtime import start_private_ray

    reason = why if due else f"forced by the operator ({why})"
    print(f"{args.model}: retraining on {len(reviewed)} reviewed cases: {reason}", flush=True)
    ray_dir = start_private_ray(num_cpus=1, namespace=f"retrain-{uuid.uuid4().hex[:8]}")
    try:
        manifest = run_retraining(
            registry.root, args.model, reviewed, cache_dir=args.cache_dir,
            epochs=args.epochs or triggers.epochs, reason=reason,
        )  # fmt: skip
    finally:
        ray.shutdown()
        shutil.rmtree(ray_dir, ignore_errors=True)
    print(f"registered {manifest.name}:{manifest.version} as {manifest.stage}")
    print(json.dumps(manifest.extra.get("comparison", {}), indent=2))
    print(f"promote it after review: edgeward models promote {manifest.name} {manifest.version}")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="cloud config YAML (default: built-in defaults)")
    p.add_argument("--registry", type=Path, help="registry root (default: config.registry_dir)")
    p.add_argument("--model", required=True, help="registry name, e.g. fundus-triage")


def register_flywheel(cmds: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = cmds.add_parser(
        "flywheel",
        help="retrain from reviewed cases; canary or roll back edge models",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="flywheel_command", metavar="COMMAND", required=True)

    r = sub.add_parser(
        "retrain",
        help="fine-tune the champion on reviewed cases when the triggers say so (a Ray task)",
        description=(
            "Read the decided review cases from the cloud store; when the label trigger of the "
            "flywheel config is met (or --force), fine-tune the champion in a Ray task, compare "
            "both on the same held-out split and register a challenger. Nothing is promoted."
        ),
    )
    _common(r)
    r.add_argument("--flywheel", type=Path, help="flywheel config YAML (retrain triggers)")
    r.add_argument("--force", action="store_true", help="retrain even if no trigger is met")
    r.add_argument("--epochs", type=int, help="fine-tuning epochs (default: the config's)")
    r.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(".cache/datasets"),
        help="the model build's rendered datasets (default .cache/datasets)",
    )
    r.set_defaults(handler=_retrain)

    for name, text in (
        ("edge-canary", "send the newest challenger to the canary gateways over MQTT"),
        ("edge-rollback", "send the champion back to the canary gateways"),
    ):
        c = sub.add_parser(name, help=text, description=text + "; prints each gateway's answer.")
        _common(c)
        c.add_argument(
            "--gateway",
            action="append",
            help="gateway id (repeatable; default grader.canary.gateways of the config)",
        )
        c.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for answers")
        if name == "edge-rollback":
            c.add_argument("--reason", required=True, help="why, recorded with the update")
        c.set_defaults(handler=_rollout)
