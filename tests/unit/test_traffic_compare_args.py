"""The comparison refuses to report on the seeds it was tuned on and names bad networks."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.traffic.compare import CompareError, compare_all, expand_scenarios, rows_for


def test_reporting_on_a_tuning_seed_is_refused_naming_the_seed(tmp_path: Path) -> None:
    with pytest.raises(CompareError, match=r"seeds \[2\] were used to tune"):
        compare_all(
            ["corpus:five_leg"],
            controllers=["fixed"],
            seeds=[2, 11],
            minutes=1,
            out=tmp_path,
            tuning_seeds=[1, 2],
        )
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_corpus_expands_to_every_network_and_an_unknown_one_is_named() -> None:
    names = expand_scenarios(["corpus", "grid:4x4:rush", "corpus:five_leg"])
    assert "corpus:five_leg" in names and "corpus:crossings" in names
    assert names[-1] == "grid:4x4:rush" and names.count("corpus:five_leg") == 1
    with pytest.raises(CompareError, match="corpus:six_leg"):
        expand_scenarios(["corpus:six_leg"])


def test_baselines_get_a_row_per_envelope_and_edgeward_one_with_the_cloud_down() -> None:
    rows = rows_for(["fixed", "actuated", "edgeward"], "both", cloud_down=True)
    assert rows == [
        "fixed",
        "fixed@envelope",
        "actuated",
        "actuated@envelope",
        "edgeward",
        "edgeward@cloud_down",
    ]
    assert rows_for(["fixed", "edgeward"], "same", cloud_down=False) == [
        "fixed@envelope",
        "edgeward",
    ]
