"""`edgeward sim fundus` and write_dataset: files plus labels.csv, nothing lost on bad input."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from shared.cli import main
from shared.errors import EdgewardError
from sim.fundus.dataset import LABEL_COLUMNS, parse_defects, write_dataset
from sim.fundus.generator import generate_sample

REPO = Path(__file__).resolve().parents[2]


def _rows(labels: Path) -> list[dict[str, str]]:
    with labels.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_write_dataset_writes_images_and_labels_that_match_the_generator(tmp_path: Path):
    labels = write_dataset(tmp_path / "set", n=5, seed=3, size=64, defect_rate=0.6, progress=False)
    assert labels == tmp_path / "set" / "labels.csv"
    with labels.open() as fh:
        assert tuple(next(csv.reader(fh))) == LABEL_COLUMNS
    rows = _rows(labels)
    assert [int(r["index"]) for r in rows] == list(range(5))
    for r in rows:
        path = Path(r["file"])
        assert not path.is_absolute()
        img = cv2.imread(str(labels.parent / path))
        assert img is not None
        s = generate_sample(3, int(r["index"]), size=64, defect_rate=0.6)
        assert np.array_equal(img, s.image_bgr)  # PNG is lossless
        lab = s.labels
        assert (int(r["grade"]), r["quality"], r["camera"]) == (lab.grade, lab.quality, lab.camera)
        assert r["referable"] == str(int(lab.referable))
        assert (r["pigmentation"], r["laterality"]) == (lab.pigmentation, lab.laterality)
        assert parse_defects(r["defects"]) == pytest.approx(lab.defects, abs=1e-3)
        assert r["seed"] == "3"


def test_existing_labels_are_never_overwritten_by_accident(tmp_path: Path):
    labels = write_dataset(tmp_path, n=2, seed=1, size=64, progress=False)
    before = labels.read_bytes()
    with pytest.raises(EdgewardError, match=r"already exists.*--overwrite"):
        write_dataset(tmp_path, n=3, seed=2, size=64, progress=False)
    assert labels.read_bytes() == before
    write_dataset(tmp_path, n=3, seed=2, size=64, progress=False, overwrite=True)
    assert len(_rows(labels)) == 3


def test_help_explains_every_option():
    out = subprocess.run(
        [str(REPO / ".venv/bin/edgeward"), "sim", "fundus", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for opt in (
        "--n",
        "--out",
        "--seed",
        "--format",
        "--defect-rate",
        "--size",
        "--omit-tags",
        "--dicom-syntax",
        "referable",
        "labels.csv",
    ):
        assert opt in out


def test_cli_writes_a_tiny_jpeg_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "jpg"
    code = main(
        [
            "sim",
            "fundus",
            "--n",
            "3",
            "--out",
            str(out),
            "--seed",
            "5",
            "--format",
            "jpeg",
            "--size",
            "96",
            "--defect-rate",
            "0.5",
        ]
    )
    assert code == 0
    rows = _rows(out / "labels.csv")
    assert len(rows) == 3 and all(r["file"].endswith(".jpg") for r in rows)
    img = cv2.imread(str(out / rows[0]["file"]))
    assert img is not None and img.shape == (96, 96, 3)
    assert "wrote 3 scans" in capsys.readouterr().out


def test_cli_writes_jpeg_baseline_dicom_without_chosen_tags(tmp_path: Path):
    out = tmp_path / "dcm"
    code = main(
        [
            "sim",
            "fundus",
            "--n",
            "2",
            "--out",
            str(out),
            "--format",
            "dicom",
            "--size",
            "96",
            "--dicom-syntax",
            "jpeg-baseline",
            "--omit-tags",
            "ImageLaterality,Manufacturer",
        ]
    )
    assert code == 0
    for r in _rows(out / "labels.csv"):
        ds = pydicom.dcmread(out / r["file"])
        assert ds.PhotometricInterpretation == "YBR_FULL_422"
        assert "ImageLaterality" not in ds and "Manufacturer" not in ds
        assert ds.Modality == "OP"


def test_cli_refuses_tags_to_omit_without_dicom_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "x"
    code = main(["sim", "fundus", "--n", "2", "--out", str(out), "--omit-tags", "PatientID"])
    assert code == 2
    assert "--omit-tags PatientID needs --format dicom" in capsys.readouterr().err
    assert not out.exists()


def test_cli_rejects_out_of_range_numbers(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exc:
        main(["sim", "fundus", "--n", "2", "--out", "x", "--defect-rate", "1.5"])
    assert exc.value.code == 2
    assert "argument --defect-rate: must be within 0.0-1.0, got 1.5" in capsys.readouterr().err
