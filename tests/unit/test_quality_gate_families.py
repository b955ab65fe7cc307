"""The classical quality gate judges defects, not familiarity: unfamiliar cameras pass clean."""

from __future__ import annotations

import numpy as np
import pytest

from edge.clinic.quality import assess
from sim.fundus.families import family, photograph
from sim.fundus.generator import generate_sample


@pytest.mark.parametrize("name", ["desk45-small", "desk30", "wide50-cropped"])
def test_a_clean_photograph_from_an_unfamiliar_camera_family_has_no_finding(name: str):
    render = generate_sample(31, 2, size=640, defect_rate=0.0)
    photo = photograph(
        render.image_bgr, render.labels.camera, family(name), np.random.default_rng(2)
    )
    report = assess(photo, block_period=None)
    assert report.findings == [], [(f.code, f.severity, f.value) for f in report.findings]


def test_a_saturated_red_channel_alone_is_not_overexposure():
    render = generate_sample(31, 3, size=512, defect_rate=0.0)
    red_burnt = render.image_bgr.copy()
    lit = red_burnt[:, :, 2] > 40
    red_burnt[:, :, 2][lit] = 255  # red clipped over the whole field, green and blue intact
    codes = {f.code for f in assess(red_burnt, block_period=None).findings}
    assert "overexposed" not in codes
    white = render.image_bgr.copy()
    white[lit] = 255  # every channel burnt out: detail lost for good
    burnt = [f for f in assess(white, block_period=None).findings if f.code == "overexposed"]
    assert burnt and burnt[0].severity == "reject"
