"""Each parser under mutated inputs for a few seconds: only our own errors, memory bounded.

`make fuzz` runs the same targets for FUZZ_SECONDS (default 60) each; here FUZZ_SECONDS
defaults to 3 so the suite stays quick. Each target runs in its own process under RLIMIT_AS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGETS = ("dicom", "png", "jpeg", "mqtt", "proto")
MEMORY_MB = 768


@pytest.mark.slow
@pytest.mark.parametrize("target", TARGETS)
def test_parser_survives_mutated_inputs_within_memory(target: str) -> None:
    seconds = float(os.environ.get("FUZZ_SECONDS", "3"))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.run",
            target,
            "--seconds",
            str(seconds),
            "--memory-mb",
            str(MEMORY_MB),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=seconds * 4 + 120,  # shrinking a failure takes longer than finding it
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    print(json.dumps(summary))
    assert summary["inputs"] > 0
    assert summary["peak_rss_mb"] - summary["baseline_rss_mb"] < MEMORY_MB, summary


def test_a_crashing_parser_is_reported_not_swallowed(tmp_path: Path) -> None:
    from tests.fuzz.targets import Target

    def check(data: bytes) -> None:
        if b"\x00" in data:
            raise KeyError("boom")  # not one of our error types: must surface

    from tests.fuzz.run import Run, run_hypothesis

    with pytest.raises(KeyError):
        run_hypothesis(Target("t", lambda: [b"ab"], check), Run("t", "hypothesis", 5.0, 64))


def test_tag_with_an_unknown_vr_is_a_clear_refusal_not_a_crash() -> None:
    # Found by atheris in 38 inputs: pydicom converts values lazily and raised
    # NotImplementedError from a later ds.get(), outside the decoder's error handling.
    import numpy as np

    from cloud.decode import BadScanError, decode_scan
    from tests.scan_corpus import dicom

    data = dicom(np.zeros((64, 64, 3), np.uint8))
    at = data.find(b"\x28\x00\x04\x00CS")  # (0028,0004) Photometric Interpretation, VR CS
    broken = data[: at + 4] + b"SC" + data[at + 6 :]
    with pytest.raises(BadScanError, match="Photometric Interpretation"):
        decode_scan(broken, "application/dicom", "s")
