"""The cloud image and the KubeRay manifest, checked against the code they deploy."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import tomllib
import yaml

from shared.config import CloudConfig

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "deploy/docker/Dockerfile.cloud"
RAYSERVICE = REPO / "deploy/kuberay/rayservice.yaml"


def _copied_dirs() -> set[str]:
    copies = re.findall(r"^COPY\s+(?:--\S+\s+)*(.+?)\s+\S+$", DOCKERFILE.read_text(), re.M)
    return {src for line in copies for src in line.split()}


def test_cloud_image_copies_every_package_the_cli_loads_at_start():
    # the CLI imports every edgeward.commands entry point before parsing: a missing package
    # (the image once lacked sim/, for `sim.demo_cli`) crashes `edgeward` in the container
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    commands = project["project"]["entry-points"]["edgeward.commands"]
    packages = {target.split(":")[0].split(".")[0] for target in commands.values()}
    assert packages, "no edgeward.commands entry points found in pyproject.toml"
    missing = packages - _copied_dirs()
    assert not missing, f"Dockerfile.cloud does not COPY {sorted(missing)}"
    # the grader's forward pass runs on edge/backends
    assert "edge" in _copied_dirs()


def test_cloud_image_build_runs_the_cli():
    text = DOCKERFILE.read_text()
    assert re.search(r"RUN .*edgeward --help", text.replace("\\\n", " "))


def _containers(service: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = service["spec"]["rayClusterConfig"]
    pods = [cluster["headGroupSpec"]["template"]] + [
        g["template"] for g in cluster["workerGroupSpecs"]
    ]
    return [c for pod in pods for c in pod["spec"]["containers"]]


def test_kuberay_keeps_records_in_the_database_never_a_shared_sqlite_file():
    docs = {d["kind"]: d for d in yaml.safe_load_all(RAYSERVICE.read_text())}
    config = yaml.safe_load(docs["ConfigMap"]["data"]["cloud.yaml"])
    containers = _containers(docs["RayService"])
    assert containers
    for container in containers:
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["EDGEWARD_DATABASE_URL"]["valueFrom"]  # a secret, not text
        assert "secretKeyRef" in env["EDGEWARD_SITE_KEY"]["valueFrom"]  # the grade log is on
        for mount in container["volumeMounts"]:
            # nothing shared is mounted where the cloud writes its SQLite files
            assert not str(config["data_dir"]).startswith(mount["mountPath"]), mount
            assert mount["mountPath"] == "/etc/edgeward" or mount.get("readOnly") is True, mount
    # on, and with the URL set it goes to the database (open_grade_log), never a pod's file
    assert config["grader"]["prediction_log"]
    claim = docs["PersistentVolumeClaim"]["spec"]
    assert claim["accessModes"] == ["ReadOnlyMany"]


def test_kuberay_cloud_reaches_the_production_broker_by_client_certificate():
    # deploy/mosquitto's broker takes TLS client certificates only (no passwords), like every
    # other deploy config: a password here is one the broker never accepts
    docs = {d["kind"]: d for d in yaml.safe_load_all(RAYSERVICE.read_text())}
    config = CloudConfig.model_validate(yaml.safe_load(docs["ConfigMap"]["data"]["cloud.yaml"]))
    broker = (REPO / "deploy/mosquitto/mosquitto.conf").read_text()
    assert "require_certificate true" in broker and f"listener {config.mqtt.port}" in broker
    assert config.mqtt.tls and config.mqtt.username is None
    for container in _containers(docs["RayService"]):
        assert not any("PASSWORD" in e["name"] for e in container["env"]), container["name"]
        mounts = [m["mountPath"] for m in container["volumeMounts"]]
        for path in (config.mqtt.ca_file, config.mqtt.cert_file, config.mqtt.key_file):
            assert path is not None and any(str(path).startswith(m + "/") for m in mounts), path


def test_kuberay_fronts_the_replicas_with_haproxy_on_every_ray_node():
    # Serve reads the switch from its controller's environment; HAProxy runs on every node
    docs = {d["kind"]: d for d in yaml.safe_load_all(RAYSERVICE.read_text())}
    for container in _containers(docs["RayService"]):
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env.get("RAY_SERVE_ENABLE_HA_PROXY") == "1", container["name"]


def test_the_cloud_image_installs_the_haproxy_binary_serve_runs():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    cloud = " ".join(project["project"]["optional-dependencies"]["cloud"])
    assert re.search(r"ray\[[^\]]*haproxy[^\]]*\]", cloud)
    assert CloudConfig().ingress == "haproxy"
