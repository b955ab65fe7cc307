"""What the cloud runtime tells an operator when Ray fails to start."""

from __future__ import annotations

from pathlib import Path

from cloud.runtime import _ray_startup_logs


def test_startup_diagnosis_shows_the_tail_of_the_raylet_and_gcs_logs(tmp_path: Path) -> None:
    logs = tmp_path / "session_latest" / "logs"
    logs.mkdir(parents=True)
    (logs / "raylet.out").write_text("\n".join(f"line {i}" for i in range(40)) + "\n")
    (logs / "gcs_server.err").write_text("bind: address already in use\n")

    diagnosis = _ray_startup_logs(tmp_path, lines=5)

    assert "line 39" in diagnosis and "line 35" in diagnosis and "line 34" not in diagnosis
    assert "address already in use" in diagnosis
    assert str(logs / "raylet.out") in diagnosis


def test_startup_diagnosis_says_where_it_looked_when_there_are_no_logs(tmp_path: Path) -> None:
    assert str(tmp_path / "session_latest" / "logs") in _ray_startup_logs(tmp_path)
