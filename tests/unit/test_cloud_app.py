"""Building the Serve application and the `edgeward cloud` command, without starting Ray."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray.serve import Application

from cloud.app import absolute, app_builder, build_app, coordinator_deployment, grader_deployment
from shared.cli import main
from shared.config import CloudConfig
from shared.config.cloud import GraderSettings
from shared.security.apikeys import INSECURE_DEV_ENV, KEY_FILE_ENV, KEYS_ENV, NoApiKeysError


def test_relative_paths_become_absolute_where_the_user_started(tmp_path):
    config = absolute(CloudConfig(data_dir=Path("var/c"), registry_dir=Path("reg")), tmp_path)
    assert config.data_dir == tmp_path / "var" / "c"
    assert config.registry_dir == tmp_path / "reg"


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (KEY_FILE_ENV, KEYS_ENV, INSECURE_DEV_ENV):
        monkeypatch.delenv(name, raising=False)


def test_app_builds_with_and_without_the_bridge(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYS_ENV, "site:clinic-a:key-a-0123456789")
    config = CloudConfig(data_dir=tmp_path / "data", registry_dir=tmp_path / "reg")
    assert isinstance(build_app(config), Application)
    assert isinstance(build_app(config, with_bridge=False), Application)
    assert (tmp_path / "data").is_dir()


def test_app_without_api_keys_is_refused_unless_insecure_dev(tmp_path, no_keys):
    config = CloudConfig(data_dir=tmp_path / "data", registry_dir=tmp_path / "reg")
    with pytest.raises(NoApiKeysError, match=f"{KEY_FILE_ENV}.*--insecure-dev"):
        build_app(config)
    assert not (tmp_path / "data").exists()  # refused before anything was made
    assert isinstance(build_app(config, insecure_dev=True), Application)


def test_cloud_up_without_keys_exits_before_ray_naming_what_to_set(tmp_path, no_keys, capsys):
    path = tmp_path / "cloud.yaml"
    path.write_text(f"role: cloud\ndata_dir: {tmp_path / 'd'}\nregistry_dir: {tmp_path}\n")
    assert main(["cloud", "up", "--config", str(path), "--no-bridge"]) == 2
    err = capsys.readouterr().err
    assert KEY_FILE_ENV in err and "edgeward certs api-key" in err and "--insecure-dev" in err
    assert not (tmp_path / "d").exists()


def test_serve_config_builder_reads_the_config_file(tmp_path, no_keys):
    path = tmp_path / "cloud.yaml"
    path.write_text(f"role: cloud\ndata_dir: {tmp_path / 'd'}\nregistry_dir: {tmp_path}\n")
    with pytest.raises(NoApiKeysError):
        app_builder({"config": str(path), "bridge": "false"})
    built = app_builder({"config": str(path), "bridge": "false", "insecure_dev": "true"})
    assert isinstance(built, Application)


def test_no_traffic_topology_means_no_coordinator(tmp_path):
    assert coordinator_deployment(CloudConfig(data_dir=tmp_path)) is None


def test_grader_autoscales_between_min_and_max_replicas(tmp_path):
    fixed = grader_deployment(CloudConfig(registry_dir=tmp_path))
    scaling = CloudConfig(
        registry_dir=tmp_path, grader=GraderSettings(min_replicas=1, max_replicas=3)
    )
    auto = grader_deployment(scaling)
    assert fixed._bound_deployment.num_replicas == 1
    autoscaling = auto._bound_deployment._deployment_config.autoscaling_config
    assert (autoscaling.min_replicas, autoscaling.max_replicas) == (1, 3)


def test_status_of_an_unreachable_tier_says_how_to_start_it(capsys):
    assert main(["cloud", "status", "--url", "http://127.0.0.1:1", "--timeout", "2"]) == 2
    assert "edgeward cloud up" in capsys.readouterr().err


def test_cloud_help_lists_up_and_status(capsys):
    assert main(["cloud"]) == 0
    out = capsys.readouterr().out
    assert "up" in out and "status" in out
