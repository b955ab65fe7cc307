"""Building the Serve application and the `edgeward cloud` command, without starting Ray."""

from __future__ import annotations

from pathlib import Path

from ray.serve import Application

from cloud.app import absolute, app_builder, build_app, coordinator_deployment, grader_deployment
from shared.cli import main
from shared.config import CloudConfig
from shared.config.cloud import GraderSettings


def test_relative_paths_become_absolute_where_the_user_started(tmp_path):
    config = absolute(CloudConfig(data_dir=Path("var/c"), registry_dir=Path("reg")), tmp_path)
    assert config.data_dir == tmp_path / "var" / "c"
    assert config.registry_dir == tmp_path / "reg"


def test_app_builds_with_and_without_the_bridge(tmp_path):
    config = CloudConfig(data_dir=tmp_path / "data", registry_dir=tmp_path / "reg")
    assert isinstance(build_app(config), Application)
    assert isinstance(build_app(config, with_bridge=False), Application)
    assert (tmp_path / "data").is_dir()


def test_serve_config_builder_reads_the_config_file(tmp_path):
    path = tmp_path / "cloud.yaml"
    path.write_text(f"role: cloud\ndata_dir: {tmp_path / 'd'}\nregistry_dir: {tmp_path}\n")
    assert isinstance(app_builder({"config": str(path), "bridge": "false"}), Application)


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
