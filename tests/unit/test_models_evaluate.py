"""`edgeward models evaluate`: the site acceptance test, on twin images a test makes itself."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from models.evaluate import final_answer, read_labels
from models.evaluate_summary import ImageResult, bootstrap_auc_ci, reliability, summarise
from shared.cli import main
from shared.errors import EdgewardError
from sim.fundus.dataset import write_dataset

VERDICTS = {"retake", "refer", "no_immediate_concern", "review", "rejected"}


def test_reliability_of_a_perfectly_calibrated_score_is_near_zero_and_of_a_wrong_one_is_large():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20000)
    calibrated = rng.uniform(0, 1, 20000) < p
    assert reliability(p, calibrated)["ece"] < 0.02
    # certain and always wrong: ECE is the whole gap
    wrong = reliability(np.full(100, 0.99), np.zeros(100, dtype=bool))
    assert wrong["ece"] == pytest.approx(0.99)
    assert sum(b["n"] for b in wrong["bins"]) == 100


def test_bootstrap_ci_brackets_the_auc_and_narrows_with_more_images():
    rng = np.random.default_rng(1)

    def width(n: int) -> float:
        pos = np.arange(n) % 2 == 0
        scores = rng.normal(pos.astype(float), 1.0)
        lo, hi = bootstrap_auc_ci(scores, pos, draws=400)
        assert lo < 0.76 < hi or n < 100  # true AUC of N(1,1) vs N(0,1) is 0.760
        return hi - lo

    assert width(1000) < width(40)


def test_labels_csv_accepts_the_dev_set_columns_and_grades(tmp_path: Path):
    csv_path = tmp_path / "manifest.csv"
    csv_path.write_text(
        "file,referable_dr,dataset\n"
        "images/a.png,no (mild/background DR),DRIVE\n"
        "images/b.png,yes,HRF\n"
        "images/c.png,unknown,HRF\n"
    )
    labels = read_labels(csv_path)
    assert labels[str((tmp_path / "images/a.png").resolve())].referable is False
    assert labels["b.png"].referable is True
    assert labels["c.png"].referable is None
    assert labels["a.png"].source == "DRIVE"
    graded = tmp_path / "labels.csv"
    graded.write_text("file,grade\nx.png,3\ny.png,1\n")
    assert [read_labels(graded)[n].referable for n in ("x.png", "y.png")] == [True, False]


def test_a_labels_csv_without_a_file_column_is_refused_with_the_columns_it_has(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,grade\na.png,2\n")
    with pytest.raises(EdgewardError, match=r"`file` column.*'name', 'grade'"):
        read_labels(bad)
    worse = tmp_path / "worse.csv"
    worse.write_text("file,grade\na.png,severe\n")
    with pytest.raises(EdgewardError, match=r"line 2: grade 'severe'"):
        read_labels(worse)


def test_summary_counts_retakes_all_clears_and_the_band_per_source():
    def r(
        src: str, verdict: str, p: float, ref: bool, band: str = "below", *, codes: tuple = ()
    ) -> ImageResult:
        return ImageResult(
            file=f"{src}-{verdict}-{p}",
            source=src,
            edge_verdict=verdict,
            referable_probability=p,
            label_referable=ref,
            grader_band=band,
            edge_codes=list(codes),
        )

    results = [
        r("A", "retake", 0.1, False, codes=("blur", "low_contrast")),
        r("A", "no_immediate_concern", 0.2, False, codes=("triage_no_immediate_concern",)),
        r("A", "review", 0.45, False, "review", codes=("ood_energy", "blur")),
        r("B", "no_immediate_concern", 0.7, True, "above"),
        r("B", "refer", 0.9, True, "above", codes=("triage_refer",)),
    ]
    s = summarise(results, {"referable": 0.5})
    assert s["retake_rate"] == pytest.approx(0.2)
    assert s["verdicts"] == {"no_immediate_concern": 2, "refer": 1, "retake": 1, "review": 1}
    assert s["auc"] == pytest.approx(1.0)
    assert s["sensitivity"] == 1.0 and s["specificity"] == 1.0
    assert s["edge_all_clear_on_referable"] == 1  # the unsafe case is counted, not hidden
    assert s["edge_all_clear_on_non_referable"] == pytest.approx(1 / 3)
    assert s["review_band_share"] == pytest.approx(0.2)
    # what held the two non-referable photographs the edge did not clear
    assert s["edge_codes_on_held_non_referable"] == {"blur": 2, "low_contrast": 1, "ood_energy": 1}
    assert s["by_source"]["A"]["retake_rate"] == pytest.approx(1 / 3)
    assert s["by_source"]["B"]["n_referable"] == 2


def test_the_final_answer_is_the_clinics_after_the_clouds_rule():
    def final(verdict: str, uploaded: bool, p: float, codes: list[str]) -> ImageResult:
        r = ImageResult(
            file="x",
            edge_verdict=verdict,
            uploaded=uploaded,
            referable_probability=p,
            edge_codes=codes,
            label_referable=False,
        )
        final_answer(r, {"referable": 0.5}, (0.2, 0.8))
        return r

    assert final("retake", False, 0.01, ["blur"]).final_verdict == "retake"  # stays at the edge
    # the grader settles the triage net's own band ...
    assert final("review", True, 0.01, ["triage_review"]).final_verdict == "no_immediate_concern"
    # ... but never clears a photograph the gateway doubts, nor answers for an unfamiliar one
    doubted = final("review", True, 0.01, ["triage_no_immediate_concern", "quality_doubt"])
    assert doubted.final_verdict == "review" and "quality_doubt" in doubted.final_reason
    unfamiliar = final("review", True, 0.99, ["quality_net"])
    assert unfamiliar.final_verdict == "review" and "unfamiliar" in unfamiliar.final_reason
    assert final("review", True, 0.5, ["triage_review"]).final_verdict == "review"  # its band
    s = summarise([doubted, final("review", True, 0.01, ["triage_review"])], {"referable": 0.5})
    assert s["final_verdicts"] == {"no_immediate_concern": 1, "review": 1}
    assert s["final_all_clear_on_non_referable"] == pytest.approx(0.5)
    assert s["edge_all_clear_on_non_referable"] == 0.0


def test_evaluate_on_twin_scans_writes_json_html_and_a_reliability_diagram(
    quick_registry: Path, tmp_path: Path
):
    labels = write_dataset(
        tmp_path / "twin", n=8, seed=11, size=384, defect_rate=0.25, progress=False
    )
    out, report = tmp_path / "out", tmp_path / "eval.json"
    code = main(
        [
            "models",
            "evaluate",
            str(tmp_path / "twin" / "images"),
            "--labels",
            str(labels),
            "--registry",
            str(quick_registry),
            "--json",
            str(report),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    data = json.loads(report.read_text())
    images, summary = data["images"], data["summary"]
    assert len(images) == 8 and summary["n"] == 8
    for im in images:
        assert im["edge_verdict"] in VERDICTS, im
        assert 0.0 <= im["referable_probability"] <= 1.0
        assert im["grade"] in range(5)
        assert im["label_referable"] in (True, False)  # joined from labels.csv by path
        assert im["grader_band"] in ("below", "review", "above")
        assert im["edge_verdict_mirrored"] in VERDICTS  # each scan judged mirrored too
        assert 0.0 <= im["referable_probability_mirrored"] <= 1.0
    assert summary["mirror_n"] == 8
    agree = sum(im["edge_verdict"] == im["edge_verdict_mirrored"] for im in images) / 8
    assert summary["mirror_verdict_agreement"] == pytest.approx(agree)
    assert sum(summary["verdicts"].values()) == 8
    for im in images:  # a scan the gateway keeps keeps its verdict; a doubted one is never cleared
        assert im["final_verdict"] in VERDICTS, im
        assert im["uploaded"] or im["final_verdict"] == im["edge_verdict"]
        if im["uploaded"] and any(not c.startswith("triage_") for c in im["edge_codes"]):
            assert im["final_verdict"] != "no_immediate_concern", im
    assert summary["n_labelled"] == 8
    assert 0.0 <= summary["ece"] <= 1.0
    with labels.open() as fh:  # the twin's labels name the camera: the breakdown is per camera
        cameras = {row["camera"] for row in csv.DictReader(fh)}
    assert set(summary["by_source"]) == cameras
    page = (out / "report.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 8
    assert "final answer" in page and "final_all_clear_on_non_referable" in page
    assert (out / "reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_refuses_a_missing_folder_by_name(tmp_path: Path, capsys):
    assert main(["models", "evaluate", str(tmp_path / "nope")]) == 2
    assert "nope: no such file or folder" in capsys.readouterr().err
