"""Registry read side: checksums and preprocessing verified; a bad champion never serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import EdgewardError, ModelRefusedError
from shared.preprocess import PreprocessSpec
from shared.registry import Manifest, Registry, artifact_for, utc_now


def _register(reg: Registry, name: str = "fundus-triage", payload: bytes = b"weights") -> Manifest:
    version = reg.next_version(name)
    directory = reg.version_dir(name, version)
    directory.mkdir(parents=True)
    (directory / "model.onnx").write_bytes(payload)
    spec = PreprocessSpec()
    manifest = Manifest(
        name=name,
        version=version,
        task="triage",
        created_at=utc_now(),
        artifacts={"onnx": artifact_for(directory / "model.onnx", directory)},
        preprocess=spec,
        preprocess_hash=spec.content_hash(),
        input_shape=["batch", 3, 224, 224],
        labels=["not_referable", "referable"],
        thresholds={"refer": 0.6, "clear": 0.2},
        operating_point={"target": "sensitivity>=0.97"},
        metrics={"auc": 0.97},
        data_snapshot={"id": "abc"},
        parity={"max_abs_diff": 1e-6},
    )
    reg.save(manifest)
    return manifest


def test_promotion_keeps_one_champion_and_archives_the_old(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    first, second = _register(reg), _register(reg, payload=b"better")
    reg.set_stage(first.name, first.version, "champion")
    reg.set_stage(second.name, second.version, "champion")
    stages = {m.version: m.stage for m in reg.versions("fundus-triage")}
    assert stages == {"1": "archived", "2": "champion"}
    assert reg.load("fundus-triage").manifest.version == "2"


def test_tampered_artifact_is_refused_naming_the_file(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    m = _register(reg)
    (reg.version_dir(m.name, m.version) / "model.onnx").write_bytes(b"evil")
    with pytest.raises(ModelRefusedError, match=r"model.onnx fails its checksum"):
        reg.load(m.name, m.version)


def test_previous_champion_keeps_serving_when_the_new_one_is_corrupt(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    old, new = _register(reg), _register(reg, payload=b"new")
    reg.set_stage(old.name, old.version, "champion")
    reg.set_stage(new.name, new.version, "champion")
    (reg.version_dir(new.name, new.version) / "model.onnx").write_bytes(b"corrupt")
    assert reg.load_serving("fundus-triage").manifest.version == old.version


def test_preprocessing_mismatch_is_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    m = _register(reg)
    path = reg.version_dir(m.name, m.version) / "manifest.json"
    data = json.loads(path.read_text())
    data["preprocess"]["size"] = 256  # exported with other preprocessing than recorded
    path.write_text(json.dumps(data))
    with pytest.raises(ModelRefusedError, match="preprocessing hash"):
        reg.load(m.name, m.version)


def test_incomplete_manifest_cannot_be_promoted(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    m = _register(reg)
    reg.save(m.model_copy(update={"metrics": {}, "parity": {}}))
    with pytest.raises(EdgewardError, match=r"manifest incomplete \(missing metrics, parity"):
        reg.set_stage(m.name, m.version, "champion")


def test_no_champion_tells_how_to_get_one(tmp_path: Path) -> None:
    with pytest.raises(EdgewardError, match="edgeward models build"):
        Registry(tmp_path).load("fundus-grader")


def test_malformed_manifest_is_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path)
    m = _register(reg)
    (reg.version_dir(m.name, m.version) / "manifest.json").write_text("{}")
    with pytest.raises(ModelRefusedError, match="manifest is malformed"):
        reg.manifest(m.name, m.version)
