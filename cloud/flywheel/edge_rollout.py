"""Canary and rollback of edge models: the challenger goes to a configured subset of gateways;
a rollback sends the champion back to the same gateways. Gateways verify before they swap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cloud.flywheel.delivery import ModelDelivery
from shared.errors import EdgewardError
from shared.messages import ModelUpdateAck
from shared.registry import Registry


@dataclass(frozen=True)
class RolloutResult:
    model_id: str
    applied: list[str]
    refused: dict[str, str]  # gateway -> reason
    silent: list[str]  # no answer within the timeout (offline: the broker keeps the update)


def _deliver(
    delivery: ModelDelivery,
    registry: Registry,
    name: str,
    version: str,
    gateways: Sequence[str],
    *,
    reason: str,
    timeout: float,
) -> RolloutResult:
    if not gateways:
        raise EdgewardError(
            f"edge rollout of {name}:{version}: no gateways given; set canary.gateways"
        )
    update_id = delivery.send(registry, name, version, gateways, reason)
    acks: dict[str, ModelUpdateAck] = delivery.wait(update_id, gateways, timeout)
    return RolloutResult(
        f"{name}:{version}",
        applied=[g for g, a in acks.items() if a.status == "applied"],
        refused={g: a.reason for g, a in acks.items() if a.status == "refused"},
        silent=[g for g in gateways if g not in acks],
    )


def start_edge_canary(
    delivery: ModelDelivery,
    registry: Registry,
    name: str,
    gateways: Sequence[str],
    timeout: float = 30.0,
) -> RolloutResult:
    """Send the registry's newest challenger of `name` to the canary gateways."""
    challengers = [m for m in registry.versions(name) if m.stage == "challenger"]
    if not challengers:
        raise EdgewardError(f"no challenger of {name!r} in {registry.root} to canary")
    version = challengers[-1].version
    return _deliver(delivery, registry, name, version, gateways, reason="canary", timeout=timeout)


def rollback_edge(
    delivery: ModelDelivery,
    registry: Registry,
    name: str,
    gateways: Sequence[str],
    *,
    reason: str,
    timeout: float = 30.0,
) -> RolloutResult:
    """Send the champion back to the canary gateways (after the controller rolled back)."""
    champion = registry.champion(name)
    if champion is None:
        raise EdgewardError(f"no champion of {name!r} in {registry.root} to roll back to")
    return _deliver(
        delivery, registry, name, champion.version, gateways,
        reason=f"rollback: {reason}", timeout=timeout,
    )  # fmt: skip
