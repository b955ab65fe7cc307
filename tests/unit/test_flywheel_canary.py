"""Canary controller: stable routing, rollback on a breached gate (reason recorded), promotion."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.flywheel.canary import CanaryController, Observation
from shared.config.flywheel import CanaryGates, FairnessBounds
from shared.registry import Registry
from tests.flywheel_support import add_version, registry_copy

GRADER = "fundus-grader"
FAIR = {"sensitivity": 0.05, "specificity": 0.05, "ece": 0.02}
GATES = CanaryGates(share=0.5, judge_after=20, min_requests=40, min_labels=10)


@pytest.fixture
def registry(quick_registry: Path, tmp_path: Path) -> Registry:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap=FAIR)
    return reg


def _controller(gates: CanaryGates = GATES) -> CanaryController:
    return CanaryController(gates, f"{GRADER}:1", f"{GRADER}:2")


def _healthy(c: CanaryController, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        call = i % 2
        c.observe(Observation(f"s{i}", False, 10.0 + i % 3, 10.0, call, call))
        c.label(f"s{i}", call)


def test_routing_is_stable_per_scan_and_close_to_the_share() -> None:
    c = _controller(CanaryGates(share=0.2))
    routed = [c.route(f"scan-{i}").canary for i in range(2000)]
    assert 0.17 < sum(routed) / len(routed) < 0.23
    assert all(c.route(f"scan-{i}").canary == routed[i] for i in range(200))


def test_shadow_mode_runs_the_challenger_but_answers_with_the_champion() -> None:
    c = _controller(CanaryGates(share=1.0, shadow=True))
    route = c.route("scan-1")
    assert route.answer == "champion" and route.also_run == "challenger"
    assert _controller(CanaryGates(share=1.0)).route("scan-1").answer == "challenger"


def test_canary_that_breaches_its_error_gate_is_rolled_back_with_the_reason(
    registry: Registry,
) -> None:
    c = _controller()
    _healthy(c, 15)
    for i in range(15, 25):
        c.observe(Observation(f"s{i}", challenger_error=True, champion_latency_ms=10.0))
    decision = c.settle(registry, FairnessBounds())
    assert decision.action == "rollback"
    assert "error rate" in decision.reasons[0]
    challenger = registry.manifest(GRADER, "2")
    assert challenger.stage == "archived"
    assert challenger.history[-1].reason.startswith(f"canary rolled back to {GRADER}:1")
    assert "error rate 0.400 (10/25)" in challenger.history[-1].reason
    assert challenger.extra["canary"]["stats"]["errors"] == 10
    champ = registry.champion(GRADER)
    assert champ is not None and champ.version == "1"
    assert not c.route("s0").canary  # after the decision everything goes to the champion


@pytest.mark.parametrize(
    ("challenger_call", "latency_ms", "reason"),
    [(None, 40.0, "p95 latency"), ("flip", 10.0, "disagrees with the champion")],
)
def test_canary_breaching_latency_or_disagreement_is_rolled_back(
    registry: Registry, challenger_call: str | None, latency_ms: float, reason: str
) -> None:
    c = _controller()
    for i in range(25):
        champion = i % 2
        mine = 1 - champion if challenger_call == "flip" and i % 3 == 0 else champion
        c.observe(Observation(f"s{i}", False, latency_ms, 10.0, mine, champion))
    decision = c.settle(registry, FairnessBounds())
    assert decision.action == "rollback"
    assert any(reason in r for r in decision.reasons)
    assert reason in registry.manifest(GRADER, "2").history[-1].reason


def test_canary_less_accurate_than_the_champion_on_reviewed_scans_is_rolled_back(
    registry: Registry,
) -> None:
    c = _controller(CanaryGates(share=0.5, judge_after=20, min_requests=40, max_disagreement=1))
    for i in range(30):
        truth = i % 2
        c.observe(Observation(f"s{i}", False, 10.0, 10.0, 1 - truth if i < 10 else truth, truth))
        c.label(f"s{i}", truth)
    decision = c.settle(registry, FairnessBounds())
    assert decision.action == "rollback"
    assert "reviewer-confirmed accuracy 0.667 vs champion 1.000" in decision.reasons[0]


def test_healthy_canary_waits_for_enough_evidence_then_is_promoted(registry: Registry) -> None:
    c = _controller()
    _healthy(c, 30)
    waiting = c.settle(registry, FairnessBounds())
    assert waiting.action == "continue" and "30/40 canary scans" in waiting.reasons[0]
    assert registry.manifest(GRADER, "2").stage == "challenger"
    _healthy(c, 20, start=30)
    decision = c.settle(registry, FairnessBounds())
    assert decision.action == "promote", decision.reasons
    champ = registry.champion(GRADER)
    assert champ is not None and champ.version == "2"
    assert champ.history[-1].reason.startswith("canary passed: all gates held over 50 scans")
    assert registry.manifest(GRADER, "1").stage == "archived"


def test_healthy_canary_that_fails_the_fairness_gate_is_rolled_back(
    quick_registry: Path, tmp_path: Path
) -> None:
    reg = registry_copy(quick_registry, tmp_path / "reg", (GRADER,))
    add_version(reg, GRADER, subgroup_gap={**FAIR, "sensitivity": 0.4, "sensitivity.camera": 0.4})
    c = _controller()
    _healthy(c, 50)
    decision = c.settle(reg, FairnessBounds())
    assert decision.action == "rollback"
    assert "sensitivity gap 0.400 exceeds bound 0.150 (across camera)" in decision.reasons[0]
    assert reg.manifest(GRADER, "2").stage == "archived"
    champ = reg.champion(GRADER)
    assert champ is not None and champ.version == "1"
