"""`models build --if-missing` rebuilds a champion that today's recipe would not build, and
never replaces one the site imported or promoted itself."""

from __future__ import annotations

from typing import Any

from models.build import current_record
from models.plan import plan
from models.recipe_record import BUILT_REASON, RECORD_KEY, outdated
from shared.registry import Manifest
from tests.unit.test_clinic_pipeline_rules import manifest

NAME = "fundus-quality"


def champion(record: dict[str, Any] | None, reason: str = BUILT_REASON) -> Manifest:
    return manifest(
        name=NAME,
        stage="champion",
        history=[{"stage": "champion", "at": "2026-01-01T00:00:00+00:00", "reason": reason}],
        extra={} if record is None else {RECORD_KEY: record},
    )


def test_a_champion_of_todays_recipe_is_current() -> None:
    assert (
        outdated(
            champion(current_record(NAME, quick=False, seed=0)), current_record(NAME, False, 0)
        )
        is None
    )


def test_a_changed_recipe_names_the_field_that_changed() -> None:
    today = current_record(NAME, quick=False, seed=0)
    old = {**today, "model": {**today["model"], "contrast": "global"}}
    why = outdated(champion(old), today)
    assert why is not None
    assert "model.contrast: 'global' -> 'local'" in why
    assert plan(False, 0).models[NAME].contrast == "local"  # the premise of this test


def test_other_training_data_is_a_changed_recipe_too() -> None:
    today = current_record(NAME, quick=False, seed=0)
    assert outdated(champion(current_record(NAME, quick=True, seed=0)), today) is not None
    assert outdated(champion(current_record(NAME, quick=False, seed=1)), today) is not None


def test_a_champion_with_no_record_is_rebuilt() -> None:
    why = outdated(champion(None), current_record(NAME, quick=False, seed=0))
    assert why is not None and "did not record its recipe" in why


def test_a_champion_the_site_chose_is_never_replaced() -> None:
    imported = champion(None, reason="imported; met the acceptance bar in bar.yaml")
    assert outdated(imported, current_record(NAME, quick=False, seed=0)) is None


def test_without_a_renderer_the_data_code_is_not_compared() -> None:
    today = current_record(NAME, quick=False, seed=0)
    assert "generator" in today  # sim/ is installed in the test environment
    moved = {**today, "generator": {**today["generator"], "code": "another"}}
    assert outdated(champion(moved), today) is not None
    no_renderer = {k: v for k, v in today.items() if k != "generator"}
    assert outdated(champion(moved), no_renderer) is None
