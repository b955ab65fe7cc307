"""Non-fundus inputs for the out-of-distribution guards."""

from __future__ import annotations

import numpy as np

from sim.fundus.nonfundus import NONFUNDUS_KINDS, nonfundus_images


def test_every_kind_is_a_uint8_bgr_image_of_the_requested_size():
    images = nonfundus_images(seed=3, size=160)
    assert set(images) == set(NONFUNDUS_KINDS)
    assert {"blank", "noise", "document", "natural_photo", "xray", "oct", "gradient"} <= set(images)
    for img in images.values():
        assert img.shape == (160, 160, 3) and img.dtype == np.uint8


def test_kinds_are_distinct_and_deterministic_per_seed():
    a, b = nonfundus_images(seed=3, size=96), nonfundus_images(seed=3, size=96)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    imgs = list(a.values())
    for i, x in enumerate(imgs):
        for y in imgs[i + 1 :]:
            assert np.abs(x.astype(int) - y).mean() > 10
    assert not np.array_equal(a["noise"], nonfundus_images(seed=4, size=96)["noise"])


def test_greyscale_kinds_have_no_colour_and_the_photo_has():
    images = nonfundus_images(seed=0, size=128)
    for kind in ("xray", "oct"):
        img = images[kind].astype(int)
        assert np.array_equal(img[..., 0], img[..., 1])
    photo = images["natural_photo"].astype(int)
    assert np.abs(photo[..., 0] - photo[..., 2]).mean() > 20
