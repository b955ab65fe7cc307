"""dcmtk's tools are found even where a look-alike of the same name comes first on PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from shared.dcmtk import dcmtk_tool

# what pynetdicom's console script answers: not dcmtk, other options
LOOK_ALIKE = "#!/bin/sh\necho 'usage: storescu [options] addr port path'\n"


def _look_alike(folder: Path) -> None:
    script = folder / "storescu"
    script.write_text(LOOK_ALIKE)
    script.chmod(0o755)


def test_a_look_alike_first_on_path_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which("storescu", path="/usr/bin:/bin")
    if real is None:
        pytest.fail("dcmtk is not installed: run `make dcmtk`")
    _look_alike(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert shutil.which("storescu") == str(tmp_path / "storescu")
    found = dcmtk_tool("storescu")
    assert found is not None and Path(found).parent != tmp_path


def test_only_a_look_alike_is_no_dcmtk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _look_alike(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert dcmtk_tool("storescu") is None
