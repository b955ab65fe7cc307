"""What the cloud runtime tells an operator when Ray fails to start, and the environment its
Ray node starts with."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cloud.haproxy_ingress import ray_node_env
from cloud.runtime import _environment, _ray_startup_logs


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


def test_the_haproxy_ingress_gets_this_nodes_own_ports_and_files(tmp_path: Path) -> None:
    ray_dir = Path(tempfile.mkdtemp(prefix="edgeward-ray-", dir="/tmp"))  # as start_private_ray
    try:
        first = ray_node_env("haproxy", ray_dir)
        second = ray_node_env("haproxy", tmp_path)
    finally:
        ray_dir.rmdir()
    assert first["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    ports = [k for k in first if k.endswith("_PORT")]
    assert len(ports) == 4  # stats, metrics and the fallback proxy's HTTP and gRPC
    assert {first[k] for k in ports}.isdisjoint({second[k] for k in ports})
    assert all(first[k].startswith(str(ray_dir)) for k in first if k.endswith(("_LOC", "_PATH")))
    # HAProxy puts its files in a 56-character subfolder and refuses socket paths over 97
    sockets = [first[k] for k in first if k.endswith("SOCKET_PATH")]
    assert sockets and all(len(s) + 1 + 56 <= 97 for s in sockets)
    assert float(first["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"]) <= 5.0


def test_the_proxy_ingress_turns_haproxy_off(tmp_path: Path) -> None:
    assert ray_node_env("proxy", tmp_path) == {"RAY_SERVE_ENABLE_HA_PROXY": "0"}


def test_the_node_environment_is_set_only_while_the_node_starts(monkeypatch) -> None:
    monkeypatch.setenv("EDGEWARD_TEST_KEPT", "before")
    monkeypatch.delenv("EDGEWARD_TEST_NEW", raising=False)
    with _environment({"EDGEWARD_TEST_KEPT": "during", "EDGEWARD_TEST_NEW": "during"}):
        assert os.environ["EDGEWARD_TEST_KEPT"] == os.environ["EDGEWARD_TEST_NEW"] == "during"
    assert os.environ["EDGEWARD_TEST_KEPT"] == "before"
    assert "EDGEWARD_TEST_NEW" not in os.environ
