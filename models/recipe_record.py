"""What a model was built from, kept in its manifest, so `models build --if-missing` can tell a
champion of today's recipe from one the code has moved past.

Without it `--if-missing` skipped any champion: after a `git pull` that changed a recipe (say the
quality net's preprocessing), `make demo` went on serving the old models, and an evaluation of
them measured code that no longer existed. Recorded: the model's recipe, the data recipe, and the
renderer's generator (its code hash) where one is installed. Training code outside the recipe is
not covered: rebuild by hand after changing it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from typing import Any

from models.datasets import find_renderer
from shared.registry import Manifest

BUILT_REASON = "built by `edgeward models build`"
RECORD_KEY = "recipe"  # in manifest.extra


def recipe_record(model: Any, data: Any, kind: str) -> dict[str, Any]:
    """The record of a build: recipes as plain JSON values, plus the data generator if known."""
    renderer = find_renderer(kind)
    record = {"model": model, "data": data}
    if renderer is not None:
        record["generator"] = dict(renderer.generator())
    return json.loads(json.dumps(record, default=_plain))


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    raise TypeError(f"a build recipe holds {type(value).__name__}, which has no JSON form")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flat(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def changes(recorded: Any, current: dict[str, Any]) -> list[str]:
    """`field: was -> now` for each field on which the recorded and the current record differ."""
    if not isinstance(recorded, dict):
        return ["(no record)"]
    if "generator" not in current:  # no renderer here to compare the data's code with
        recorded = {k: v for k, v in recorded.items() if k != "generator"}
    was, now = _flat(recorded), _flat(current)
    changed = sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k))
    return [f"{k}: {was.get(k)!r} -> {now.get(k)!r}" for k in changed]


def outdated(champion: Manifest, current: dict[str, Any]) -> str | None:
    """Why `champion` is not what today's recipe builds, or None when it is (or is not ours).

    A champion someone imported or promoted from elsewhere is the site's choice: never replaced.
    """
    if not any(change.reason == BUILT_REASON for change in champion.history):
        return None
    recorded = champion.extra.get(RECORD_KEY)
    if not isinstance(recorded, dict):
        return "by an edgeward that did not record its recipe"
    changed = changes(recorded, current)
    if not changed:
        return None
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return f"from another recipe ({', '.join(changed[:3])}{more})"
