"""The fair comparison on a corpus network: the baselines' own programs break the envelope
edgeward obeys, the rewritten ones do not, and a cloud-down run is reported beside them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.traffic.compare import compare_all, format_all

pytestmark = [pytest.mark.sumo, pytest.mark.mqtt]


def test_baselines_as_is_and_under_the_envelope_and_edgeward_with_the_cloud_down(
    tmp_path: Path,
) -> None:
    table = compare_all(
        ["corpus:five_leg"],
        controllers=["fixed", "edgeward"],
        seeds=[11],
        minutes=1.5,
        out=tmp_path,
        envelope="both",
        cloud_down=True,
        controller_options={"counter": "truth"},
    )
    rows = table["scenarios"]["corpus:five_leg"]
    assert set(rows) == {"fixed", "fixed@envelope", "edgeward", "edgeward@cloud_down"}
    # netconvert's 3 s yellows into the next green: violations as the network has it, none after
    assert rows["fixed"]["safety_violations"]["mean"] > 0
    assert rows["fixed@envelope"]["safety_violations"]["mean"] == 0
    assert rows["edgeward"]["safety_violations"]["mean"] == 0
    assert rows["edgeward@cloud_down"]["safety_violations"]["mean"] == 0
    assert table["cloud_down"] == "cloud_down@30-60"
    down = json.loads(
        (tmp_path / "corpus_five_leg" / "edgeward@cloud_down-seed11" / "summary.json").read_text()
    )
    assert down["faults"] == ["cloud_down@30-60"] and down["mode_changes"] >= 2  # down, back up
    assert table["held_out_networks"] == [] and table["tuning_networks"] == ["corpus:five_leg"]
    text = format_all(table)
    assert "held-out seeds 11 (edgeward tuned on seeds 1 2 3" in text
    assert "| corpus:five_leg | fixed | edgeward's |" in text
    assert json.loads((tmp_path / "compare.json").read_text()) == table

    # a second run reads the baselines back rather than running them again
    (tmp_path / "corpus_five_leg" / "fixed-seed11" / "tripinfo.xml").unlink()
    again = compare_all(
        ["corpus:five_leg"],
        controllers=["fixed"],
        seeds=[11],
        minutes=1.5,
        out=tmp_path,
        reuse_baselines=True,
    )
    assert again["scenarios"]["corpus:five_leg"]["fixed"] == rows["fixed"]
    assert not (tmp_path / "corpus_five_leg" / "fixed-seed11" / "tripinfo.xml").exists()


def test_the_cli_runs_a_baseline_under_the_envelope(tmp_path: Path) -> None:
    import subprocess
    import sys

    from sim.traffic.corpus.generate import build

    cfg = build("five_leg", tmp_path / "net", seed=11, seconds=120)
    edgeward = Path(sys.executable).with_name("edgeward")
    for flag, out in (["--envelope"], tmp_path / "env"), ([], tmp_path / "own"):
        args = ["--scenario", str(cfg), "--controller", "fixed", "--minutes", "2"]
        proc = subprocess.run(
            [str(edgeward), "sim", "traffic", *args, "--out", str(out), "--no-progress", *flag],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    env = json.loads((tmp_path / "env" / "summary.json").read_text())
    own = json.loads((tmp_path / "own" / "summary.json").read_text())
    assert env["baseline_envelope"] is True and env["network"].endswith(".envelope.net.xml")
    assert env["safety_violations"] == 0 < own["safety_violations"]
