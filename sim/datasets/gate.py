"""The gate calibration set (`models.gate_data`): twin scans at the gateway's scale, what the
classical gate says about each at full size, and the quality net's view as the gateway makes it.

sim may import edge; models may not, so the classical verdict is computed here and stored.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from edge.clinic.pipeline import ClinicPipeline
from edge.clinic.quality import assess
from models.data import QUALITY_CLASSES
from models.datasets import DatasetRequest, view_name
from models.gate_data import LABELS, GateRecipe
from shared.preprocess import PreprocessSpec
from sim.datasets.code import source_key
from sim.datasets.fundus import photographed, rows, stacked
from sim.fundus.generator import GENERATOR_VERSION

# seed, index, render size, defect rate, family rate, views
_Job = tuple[int, int, int, float, float, tuple[PreprocessSpec, ...]]
# Outside sim/, so source_key does not follow them: the classical checks and the gateway's model
# view. A change to either (new bounds, a new check) must re-render the set.
GATE_CODE = (
    "edge.clinic.quality",
    "edge.clinic.quality_fov",
    "edge.clinic.pipeline",
    "shared.preprocess",
)


def _render_one(job: _Job) -> dict[str, Any]:
    seed, index, render_size, defect_rate, family_rate, specs = job
    # train=False: the held-out camera family may appear, as in validation and test
    image, lab, camera = photographed(
        seed,
        index,
        render_size=render_size,
        defect_rate=defect_rate,
        family_rate=family_rate,
        train=False,
    )
    # the gateway's own measurement: full-size image, 8-px JPEG blocks (no reduced decode)
    report = assess(image)
    return {
        # the view the gateway gives the net (from the gate's 512 px frame, not the raw render):
        # p_reject differs by up to ~0.4 between the two on JPEG-damaged scans
        "views": {view_name(s): ClinicPipeline.model_view(image, report, s) for s in specs},
        "quality": QUALITY_CLASSES.index(lab.quality),
        "classical_reject": bool(report.rejects),
        "classical_warn": bool(report.warnings),
        "findings": json.dumps(sorted(f"{f.severity}:{f.code}" for f in report.findings)),
        "camera": camera,
        "defects": json.dumps(dict(lab.defects), sort_keys=True),
    }


class GateRenderer:
    """Renders a `models.gate_data.GateRecipe`: every scan once, judged by the classical gate."""

    def generator(self) -> dict[str, str]:
        return {
            "generator": "sim.fundus+edge.clinic.quality",
            "generator_version": str(GENERATOR_VERSION),
            "code": source_key(__name__, *GATE_CODE),
        }

    def render(self, request: DatasetRequest, *, workers: int) -> dict[str, np.ndarray]:
        recipe = GateRecipe(**request.params)
        n = recipe.n_calibrate + recipe.n_test
        jobs = [
            (
                recipe.seed,
                recipe.first_index + i,
                recipe.render_size,
                recipe.defect_rate,
                recipe.family_rate,
                request.views,
            )
            for i in range(n)
        ]
        rendered = list(rows(_render_one, jobs, workers, "gate-calibration scans"))
        return stacked(rendered, LABELS, request.views)


RENDERER = GateRenderer()
