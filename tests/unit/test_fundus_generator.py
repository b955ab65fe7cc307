"""The retinal twin: determinism, label correctness and that its defects really hurt."""

from __future__ import annotations

import functools

import cv2
import numpy as np
import pytest

from shared.errors import EdgewardError
from sim.fundus.defects import (
    COMBINED_REJECT,
    DEFECTS,
    QUALITY_RULES,
    USABLE_MAX_FRACTION,
    quality_of,
    sample_defects,
)
from sim.fundus.generator import (
    CAMERAS,
    PIGMENTATIONS,
    FundusSample,
    generate,
    generate_sample,
)
from sim.fundus.shift import ShiftSpec

SIZE = 128


def test_same_seed_and_index_give_identical_scan_and_labels():
    a = generate_sample(11, 5, size=SIZE, defect_rate=0.5)
    b = generate_sample(11, 5, size=SIZE, defect_rate=0.5)
    assert np.array_equal(a.image_bgr, b.image_bgr)
    assert np.array_equal(a.lesion_mask, b.lesion_mask)
    assert a.labels == b.labels


def test_generate_yields_the_same_scans_as_generate_sample():
    batch = list(generate(3, seed=4, size=SIZE))
    assert [s.index for s in batch] == [0, 1, 2]
    single = generate_sample(4, 2, size=SIZE)
    assert np.array_equal(batch[2].image_bgr, single.image_bgr)


def test_other_seed_or_index_gives_another_eye():
    a = generate_sample(1, 0, size=SIZE).image_bgr.astype(int)
    assert np.abs(a - generate_sample(2, 0, size=SIZE).image_bgr).mean() > 5
    assert np.abs(a - generate_sample(1, 1, size=SIZE).image_bgr).mean() > 5


def test_scan_is_uint8_bgr_with_a_matching_bool_lesion_mask():
    s = generate_sample(3, 3, size=200, grade=3)
    assert s.image_bgr.shape == (200, 200, 3) and s.image_bgr.dtype == np.uint8
    assert s.lesion_mask.shape == (200, 200) and s.lesion_mask.dtype == bool


@pytest.mark.parametrize("index", range(6))
def test_grade_zero_scan_has_no_lesions(index: int):
    s = generate_sample(21, index, size=SIZE, grade=0, defect_rate=0.5)
    assert s.labels.grade == 0 and not s.labels.referable
    assert not s.lesion_mask.any()


@pytest.mark.parametrize("grade", [2, 3, 4])
def test_referable_grades_draw_lesions_and_are_labelled_referable(grade: int):
    s = generate_sample(5, grade, size=256, grade=grade, defects={})
    assert s.labels.referable
    assert s.lesion_mask.sum() > 20


def test_microaneurysms_of_grade_one_are_tiny_but_drawn():
    s = generate_sample(5, 1, size=1024, grade=1, defects={})
    assert not s.labels.referable
    assert 0 < s.lesion_mask.mean() < 0.002


def test_forcing_the_grade_leaves_camera_defects_and_eye_unchanged():
    drawn = generate_sample(8, 9, size=SIZE, defect_rate=1.0)
    forced = generate_sample(8, 9, size=SIZE, defect_rate=1.0, grade=(drawn.labels.grade + 2) % 5)
    for field in ("camera", "pigmentation", "laterality", "defects"):
        assert getattr(forced.labels, field) == getattr(drawn.labels, field)


@pytest.fixture(scope="module")
def population() -> list[FundusSample]:
    """A small population with many defects (64 px is enough for labels)."""
    return list(generate(80, seed=9, size=64, defect_rate=0.6))


def test_every_label_is_consistent_with_the_quality_table(population: list[FundusSample]):
    samples = population
    qualities = {s.labels.quality for s in samples}
    assert qualities == {"good", "usable", "reject"}
    for s in samples:
        lab = s.labels
        assert lab.quality == quality_of(lab.defects)
        assert (lab.quality == "good") == (not lab.defects)
        assert lab.referable == (lab.grade >= 2)
        assert lab.camera in CAMERAS and lab.pigmentation in PIGMENTATIONS
        assert lab.laterality in ("L", "R")
        assert all(0.0 < v <= 1.0 for v in lab.defects.values())


def test_a_reject_always_carries_a_defect(population: list[FundusSample]):
    rejects = [s for s in population if s.labels.quality == "reject"]
    assert len(rejects) >= 10
    assert all(s.labels.defects for s in rejects)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 1.0])
def test_defect_rate_is_the_fraction_of_scans_with_a_defect(rate: float):
    rng = np.random.default_rng(0)
    hits = sum(bool(sample_defects(rng, rate)) for _ in range(4000))
    assert abs(hits / 4000 - rate) < 0.025


def test_defect_rate_holds_for_generated_scans():
    assert all(s.labels.defects for s in generate(10, seed=2, size=64, defect_rate=1.0))
    assert not any(s.labels.defects for s in generate(10, seed=2, size=64, defect_rate=0.0))


def test_quality_table_rules():
    assert quality_of({}) == "good"
    for name, rule in QUALITY_RULES.items():
        assert quality_of({name: rule.reject_at}) == "reject"
        assert quality_of({name: rule.reject_at * USABLE_MAX_FRACTION}) == "usable"
    # Two defects that are each mild still make the scan unreadable together.
    a, b = "defocus", "haze_flare"
    sev = {n: QUALITY_RULES[n].reject_at * COMBINED_REJECT / 2 for n in (a, b)}
    assert quality_of(sev) == "reject"


def test_sampled_usable_and_reject_severities_keep_a_margin():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        for name, sev in sample_defects(rng, 1.0).items():
            thr = QUALITY_RULES[name].reject_at
            assert sev >= thr or sev <= USABLE_MAX_FRACTION * thr + 1e-3


def _green_at_224(s: FundusSample) -> np.ndarray:
    return cv2.resize(s.image_bgr, (224, 224), interpolation=cv2.INTER_AREA)[..., 1].astype(
        np.float32
    )


def _detail(g: np.ndarray) -> float:
    """Vessel- and lesion-scale contrast in the centre (band-pass energy), what a grader reads."""
    c = g[56:168, 56:168]
    return float(np.abs(cv2.GaussianBlur(c, (0, 0), 1) - cv2.GaussianBlur(c, (0, 0), 3)).mean())


def _fov(g: np.ndarray) -> np.ndarray:
    return g > 8


def _edges_kept(g: np.ndarray, c: np.ndarray) -> float:
    """Correlation of fine structure with the clean scan (JPEG blocks add edges of their own)."""
    lg, lc = cv2.Laplacian(g, cv2.CV_32F), cv2.Laplacian(c, cv2.CV_32F)
    return float(np.corrcoef(lg.ravel(), lc.ravel())[0, 1])


# Each unreadable defect, measured on the 224 px model view against the same clean scan.
UNREADABLE = {
    "defocus": lambda g, c: _detail(g) < 0.5 * _detail(c),
    "motion_blur": lambda g, c: _detail(g) < 0.5 * _detail(c),
    "low_resolution": lambda g, c: _detail(g) < 0.5 * _detail(c),
    "haze_flare": lambda g, c: _detail(g) < 0.5 * _detail(c),
    "underexposure": lambda g, c: g[_fov(c)].mean() < 0.25 * c[_fov(c)].mean(),
    "overexposure": lambda g, c: (g[_fov(c)] > 235).mean() > 0.3,
    "uneven_illumination": lambda g, c: (g[_fov(c)] < 0.25 * c[_fov(c)]).mean() > 0.25,
    "off_centre": lambda g, c: _fov(g).sum() < 0.7 * _fov(c).sum(),
    "eyelash_occlusion": lambda g, c: (g[_fov(c)] < 0.4 * c[_fov(c)]).mean() > 0.25,
    "jpeg_compression": lambda g, c: _edges_kept(g, c) < 0.5,
}


def test_every_defect_has_an_unreadability_check():
    assert set(UNREADABLE) == set(DEFECTS)


@functools.cache
def _clean_view() -> np.ndarray:
    return _green_at_224(generate_sample(31, 4, size=512, grade=2, defects={}))


@pytest.mark.parametrize("name", DEFECTS)
def test_reject_level_defect_makes_the_scan_hard_to_read(name: str):
    clean = _clean_view()
    at_threshold = generate_sample(
        31, 4, size=512, grade=2, defects={name: QUALITY_RULES[name].reject_at}
    )
    assert at_threshold.labels.quality == "reject"
    assert UNREADABLE[name](_green_at_224(at_threshold), clean)


@pytest.mark.parametrize("name", DEFECTS)
def test_usable_level_defect_stays_readable(name: str):
    clean = _clean_view()
    mild = generate_sample(
        31, 4, size=512, grade=2, defects={name: QUALITY_RULES[name].reject_at * 0.4}
    )
    assert mild.labels.quality == "usable"
    assert not UNREADABLE[name](_green_at_224(mild), clean)


@pytest.mark.parametrize("laterality", ["L", "R"])
def test_optic_disc_sits_on_the_nasal_side(laterality: str):
    # Right eye: disc on the image's right; left eye: mirrored.
    for i in range(12):
        s = generate_sample(40, i, size=256, grade=0, defects={})
        if s.labels.laterality != laterality:
            continue
        # The disc is the whitest structure: brightest in blue, where the fundus is darkest.
        g = cv2.GaussianBlur(s.image_bgr[..., 0], (0, 0), 3)
        x = np.unravel_index(int(g.argmax()), g.shape)[1]
        assert (x > 128) == (laterality == "R")


def test_shift_scenario_changes_population_and_colour():
    shift = ShiftSpec(
        colour_cast=(1.3, 1.0, 0.8), grade_weights=(0, 0, 0, 0, 1), new_camera="optomed-aurora"
    )
    base = generate_sample(6, 0, size=SIZE, defects={})
    moved = generate_sample(6, 0, size=SIZE, defects={}, shift=shift)
    assert moved.labels.grade == 4 and moved.labels.camera == "optomed-aurora"
    fov = base.image_bgr.max(axis=2) > 20
    b_ratio = base.image_bgr[..., 0][fov].mean() / base.image_bgr[..., 2][fov].mean()
    m_ratio = moved.image_bgr[..., 0][fov].mean() / moved.image_bgr[..., 2][fov].mean()
    assert m_ratio > 1.2 * b_ratio


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"defects": {"smudge": 0.5}}, "unknown defect 'smudge'"),
        ({"defects": {"defocus": 1.5}}, "severity 1.5"),
        ({"grade": 5}, "grade 5"),
        ({"pigmentation": "green"}, "pigmentation 'green'"),
        ({"defect_rate": 1.2}, "defect rate 1.2"),
        ({"size": 10}, "size 10"),
    ],
)
def test_bad_arguments_get_a_clear_error(kwargs: dict, words: str):
    with pytest.raises(EdgewardError, match=words):
        generate_sample(0, 0, **kwargs)


def test_bad_shift_is_refused():
    with pytest.raises(EdgewardError, match="grade_weights"):
        ShiftSpec(grade_weights=(1, 1))
