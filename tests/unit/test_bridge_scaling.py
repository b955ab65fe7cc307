"""The bridge's autoscaling decision, with controlled busy shares (no Ray)."""

from __future__ import annotations

import pytest

from cloud.bridge_scaling import replicas_for


def test_a_busy_group_grows_to_bring_each_replica_back_under_the_target():
    assert replicas_for({"a": 0.95}, current=1, lowest=1, highest=4) == 2
    assert replicas_for({"a": 0.9, "b": 0.9}, current=2, lowest=1, highest=4) == 3
    assert replicas_for({"a": 1.0, "b": 1.0, "c": 1.0}, current=3, lowest=1, highest=4) == 4


def test_it_never_leaves_the_min_max_range():
    assert replicas_for({"a": 1.0, "b": 1.0, "c": 1.0}, current=3, lowest=1, highest=3) == 3
    assert replicas_for({"a": 0.0}, current=1, lowest=2, highest=4) == 2


def test_an_idle_group_shrinks_one_replica_at_a_time_and_a_middling_one_stays():
    assert replicas_for({"a": 0.1, "b": 0.1, "c": 0.1}, current=3, lowest=1, highest=4) == 2
    assert replicas_for({"a": 0.5, "b": 0.5}, current=2, lowest=1, highest=4) == 2
    assert replicas_for({"a": 0.0}, current=1, lowest=1, highest=4) == 1


def test_no_reports_keep_the_current_count():
    assert replicas_for({}, current=3, lowest=1, highest=4) == 3


def test_a_max_below_the_min_is_refused_with_both_values():
    with pytest.raises(ValueError, match="max replicas 1 < min replicas 2"):
        replicas_for({"a": 0.5}, current=1, lowest=2, highest=1)
