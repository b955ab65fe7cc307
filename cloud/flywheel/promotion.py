"""The only way the flywheel makes a champion: every promotion passes the fairness gate.

The gate reads the subgroup gaps the model factory measured on the held-out set
(`manifest.subgroup_gap`) and, when given, a live audit on reviewer-confirmed predictions
(`shared.monitoring.fairness.audit`). A gap over its bound blocks the promotion and is recorded
in the manifest history, so the refusal is auditable like any stage change.
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.config.flywheel import FairnessBounds
from shared.errors import EdgewardError
from shared.monitoring.fairness import FairnessReport
from shared.registry import Manifest, Registry


class FairnessBlockedError(EdgewardError):
    """A candidate whose subgroup gap exceeds a configured bound; it stays where it was."""


def manifest_breaches(manifest: Manifest, bounds: Mapping[str, float]) -> list[str]:
    """Gaps in the manifest's held-out subgroup metrics that exceed their bound.

    A bound on `sensitivity` covers every variant a task reports (`sensitivity_refer`,
    `sensitivity_not_cleared`, ...); the worst attribute is named from the `metric.attr` keys.
    """
    found = []
    for metric, bound in bounds.items():
        for key, gap in sorted(manifest.subgroup_gap.items()):
            if "." in key or not (key == metric or key.startswith(f"{metric}_")):
                continue
            if gap > bound:
                attrs = {
                    k.split(".", 1)[1]: v
                    for k, v in manifest.subgroup_gap.items()
                    if k.startswith(f"{key}.")
                }
                worst = max(attrs, key=attrs.__getitem__, default="")
                where = f" (across {worst})" if worst else ""
                found.append(f"held-out {key} gap {gap:.3f} exceeds bound {bound:.3f}{where}")
    return found


def fairness_breaches(
    manifest: Manifest, bounds: FairnessBounds, live: FairnessReport | None = None
) -> list[str]:
    limits = bounds.as_dict()
    found = manifest_breaches(manifest, limits)
    if live is not None:
        found += [f"live {b}" for b in live.breaches(limits)]
    return found


def promote(
    registry: Registry,
    name: str,
    version: str,
    bounds: FairnessBounds,
    *,
    reason: str,
    live: FairnessReport | None = None,
) -> Manifest:
    """Make `name:version` the champion if it passes the fairness gate; else raise and record."""
    manifest = registry.manifest(name, version)
    breaches = fairness_breaches(manifest, bounds, live)
    if breaches:
        why = "fairness gate: " + "; ".join(breaches)
        if manifest.stage != "archived":
            registry.set_stage(name, version, manifest.stage, reason=f"promotion refused: {why}")
        raise FairnessBlockedError(
            f"cannot promote {manifest.model_id}: {why}; retrain with more data from the "
            "worse-served subgroup or raise the bound in the flywheel config if it is justified"
        )
    return registry.set_stage(name, version, "champion", reason=reason)
