"""Camera families: renders framed, exposed and stored as real cameras do; realism measured."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from shared.errors import EdgewardError
from sim.fundus.dataset import write_dataset
from sim.fundus.families import FAMILIES, family, photograph, randomised
from sim.fundus.generator import generate_sample
from sim.fundus.realism import compare, folder_stats, ks_distance, write_report


@pytest.fixture(scope="module")
def render():
    return generate_sample(7, 0, size=512, defect_rate=0.0)


def test_a_family_gives_its_frame_size_and_a_lit_field_inside_black(render):
    fam = family("desk45-small")
    out = photograph(render.image_bgr, render.labels.camera, fam, np.random.default_rng(0))
    assert out.shape == (fam.height, fam.width, 3)
    assert out[:5, :5].max() < 20  # the corner outside the circular field stays black
    assert out[fam.height // 2, fam.width // 2].mean() > 60  # the centre is lit


def test_a_cropped_field_is_cut_at_the_top_and_bottom(render):
    fam = family("wide50-cropped")
    out = photograph(render.image_bgr, render.labels.camera, fam, np.random.default_rng(0))
    column = out[:, fam.width // 2].mean(axis=1)
    assert column[1] > 30 and column[-2] > 30  # the field runs off the frame
    assert out[fam.height // 2, 2].mean() < 20  # but not off the sides


def test_families_are_brighter_and_lower_in_detail_contrast_than_the_bare_twin(render):
    bright = photograph(
        render.image_bgr, render.labels.camera, family("desk45-small"), np.random.default_rng(1)
    )
    centre = slice(200, 380)
    assert bright[centre, centre].mean() > render.image_bgr[180:330, 180:330].mean()


def test_every_family_stays_within_the_issues_ranges():
    for fam in FAMILIES.values():
        assert 30 <= fam.field_deg <= 55
        assert 565 <= max(fam.width, fam.height) <= 5000
    kinds = {f.field for f in FAMILIES.values()}
    assert kinds == {"circular", "notched", "cropped"}


def test_randomised_families_keep_the_frame_and_stay_within_the_ranges(render):
    seen_fields, seen_jpeg = set(), set()
    for i in range(60):
        base = FAMILIES[sorted(FAMILIES)[i % len(FAMILIES)]]
        fam = randomised(base, np.random.default_rng(i), frame_max=400 + 10 * i)
        assert abs(max(fam.width, fam.height) - (400 + 10 * i)) <= 1  # rounding of the aspect
        assert (
            min(fam.width, fam.height) >= 1
            and abs(fam.width / fam.height - base.width / base.height) < 0.02
        )
        assert 30 <= fam.field_deg <= 55 and 0.05 <= fam.veil <= 0.6 and fam.noise <= 0.03
        assert fam.name == base.name
        seen_fields.add(fam.field)
        seen_jpeg.add(fam.jpeg_quality)
    assert seen_fields == {"circular", "notched", "cropped"} and None in seen_jpeg
    again = randomised(FAMILIES["desk30"], np.random.default_rng(3), 500)
    assert again == randomised(FAMILIES["desk30"], np.random.default_rng(3), 500)
    out = photograph(render.image_bgr, render.labels.camera, again, np.random.default_rng(0))
    assert out.shape == (again.height, again.width, 3)


def test_unknown_family_is_refused_with_the_known_ones(tmp_path: Path):
    with pytest.raises(EdgewardError, match=r"unknown camera family 'polaroid'.*desk45-small"):
        write_dataset(tmp_path / "x", n=1, seed=0, size=128, family="polaroid", progress=False)
    assert not (tmp_path / "x" / "labels.csv").exists()
    with pytest.raises(EdgewardError, match="png/jpeg, not dicom"):
        write_dataset(tmp_path / "y", n=1, seed=0, fmt="dicom", family="desk30", progress=False)


def test_write_dataset_with_a_family_keeps_the_labels_and_names_the_camera(tmp_path: Path):
    plain = write_dataset(tmp_path / "plain", n=2, seed=3, size=256, progress=False)
    fam = write_dataset(
        tmp_path / "fam", n=2, seed=3, size=256, family="desk45-small", progress=False
    )
    with plain.open() as a, fam.open() as b:
        rows_a, rows_b = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["grade"] for r in rows_a] == [r["grade"] for r in rows_b]
    assert {r["camera"] for r in rows_b} == {"desk45-small"}


def test_realism_report_is_zero_for_the_same_folder_and_sees_a_shift(tmp_path: Path):
    assert ks_distance(np.arange(10.0), np.arange(10.0)) == 0.0
    assert ks_distance(np.zeros(5), np.ones(5)) == 1.0
    a = write_dataset(tmp_path / "a", n=3, seed=1, size=256, defect_rate=0, progress=False)
    b = write_dataset(
        tmp_path / "b", n=3, seed=1, size=256, defect_rate=0, family="desk45-small", progress=False
    )
    twin, real = folder_stats(a.parent / "images"), folder_stats(b.parent / "images")
    same = compare(twin, twin)
    assert all(row["ks"] == 0.0 for row in same.values())
    shifted = compare(twin, real)
    # every family photograph has the family's frame (the twin's exposure is now near real's)
    assert shifted["long_side_px"]["ks"] == 1.0 and shifted["aspect"]["ks"] == 1.0
    assert shifted["long_side_px"]["real_median"] == 584
    page = write_report(twin, real, tmp_path / "report")
    assert "exposure" in page.read_text()
    assert (tmp_path / "report" / "realism.png").stat().st_size > 1000
