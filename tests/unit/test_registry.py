"""Registry read side: checksums and preprocessing verified; a bad champion never serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.errors import EdgewardError, ModelRefusedError
from shared.preprocess import PreprocessSpec
from shared.registry import Artifact, Manifest, Registry, artifact_for, utc_now
from shared.security.signing import (
    PUBLIC_KEY_ENV,
    SIGNING_KEY_ENV,
    load_private_key,
    load_public_key,
    make_keypair,
)


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


# ---- signatures ----


def _keys(tmp_path: Path, name: str = "keys"):
    private, public = make_keypair(tmp_path / name)
    return load_private_key(private), load_public_key(public)


def test_promotion_signs_and_a_trusting_registry_serves_only_what_verifies(
    tmp_path: Path,
) -> None:
    signer, public = _keys(tmp_path)
    root = tmp_path / "reg"
    promoter = Registry(root, signing_key=signer, use_env=False)
    m = _register(promoter)
    promoter.set_stage(m.name, m.version, "champion")
    signed = promoter.manifest(m.name, m.version)
    assert set(signed.signatures) == {"onnx"}
    gateway = Registry(root, trusted_key=public, use_env=False)
    assert gateway.load(m.name).manifest.version == m.version
    # A stage change is local state, outside the signature: still verifies after archiving.
    gateway.set_stage(m.name, m.version, "archived")
    assert gateway.problems(gateway.manifest(m.name, m.version)) == []

    # Tampered manifest: a looser threshold, written straight to disk.
    path = root / m.name / m.version / "manifest.json"
    data = json.loads(path.read_text())
    data["thresholds"]["refer"] = 0.99
    path.write_text(json.dumps(data))
    with pytest.raises(ModelRefusedError, match="does not verify against the trusted model key"):
        gateway.load(m.name, m.version)


def test_unsigned_or_foreign_signed_versions_are_refused(tmp_path: Path) -> None:
    _, public = _keys(tmp_path)
    other_signer, _ = _keys(tmp_path, "other")
    root = tmp_path / "reg"
    unsigned = _register(Registry(root, use_env=False))
    gateway = Registry(root, trusted_key=public, use_env=False)
    with pytest.raises(ModelRefusedError, match="onnx artifact of fundus-triage:1 is not signed"):
        gateway.load(unsigned.name, unsigned.version)
    Registry(root, signing_key=other_signer, use_env=False).sign(unsigned)
    with pytest.raises(ModelRefusedError, match="signed by another key"):
        gateway.load(unsigned.name, unsigned.version)
    # Without a trusted key the registry behaves as before (development, tests).
    assert Registry(root, use_env=False).problems(unsigned) == []


def test_keys_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private, public = make_keypair(tmp_path / "keys")
    monkeypatch.setenv(SIGNING_KEY_ENV, str(private))
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(public))
    reg = Registry(tmp_path / "reg")
    m = _register(reg)
    reg.set_stage(m.name, m.version, "challenger")  # challengers are signed too (canaries)
    assert reg.problems(reg.manifest(m.name, m.version)) == []
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(tmp_path / "missing.pub"))
    with pytest.raises(EdgewardError, match=r"missing\.pub is unreadable"):
        Registry(tmp_path / "reg")


@pytest.mark.parametrize("bad", ["../model.onnx", "/etc/passwd", "sub/model.onnx", ".hidden", ""])
def test_artifact_paths_must_be_bare_names(bad: str) -> None:
    with pytest.raises(ValueError, match="path"):
        Artifact(path=bad, sha256="0" * 64, bytes=1)


def test_cli_makes_a_model_key_and_signs_a_champion(tmp_path: Path, capsys) -> None:
    from shared.cli import main

    assert main(["certs", "model-key", "--dir", str(tmp_path / "k")]) == 0
    assert (tmp_path / "k" / "model-signing.key").stat().st_mode & 0o077 == 0
    root = tmp_path / "reg"
    m = _register(Registry(root, use_env=False))
    Registry(root, use_env=False).set_stage(m.name, m.version, "champion")
    key = str(tmp_path / "k" / "model-signing.key")
    assert main(["certs", "sign-model", m.name, "--registry", str(root), "--key", key]) == 0
    assert "signed fundus-triage:1: onnx" in capsys.readouterr().out
    public = load_public_key(tmp_path / "k" / "model-signing.pub")
    assert Registry(root, trusted_key=public, use_env=False).load(m.name).manifest == (
        Registry(root, use_env=False).manifest(m.name, m.version)
    )


def test_cloud_replicas_and_gateways_load_only_signed_models_once_a_key_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both load through Registry: cloud/model_loading.resolve and the edge's load_serving."""
    from cloud.model_loading import resolve

    private, public = make_keypair(tmp_path / "keys")
    root = tmp_path / "reg"
    m = _register(Registry(root, use_env=False))
    Registry(root, use_env=False).set_stage(m.name, m.version, "champion")
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(public))
    with pytest.raises(ModelRefusedError, match="not signed"):
        resolve(root, "", m.name)
    with pytest.raises(ModelRefusedError, match="not signed"):
        Registry(root).load_serving(m.name)
    Registry(root, signing_key=load_private_key(private), use_env=False).sign(
        Registry(root, use_env=False).manifest(m.name, m.version)
    )
    assert resolve(root, "", m.name).manifest.version == m.version
    assert Registry(root).load_serving(m.name).manifest.version == m.version


def test_a_manifest_is_readable_by_the_service_that_serves_the_registry(tmp_path: Path) -> None:
    # a container's user or a mounted volume's reader is often not the user who built it:
    # the manifest, like the model files, is readable by all (it was owner-only, 0600)
    reg = Registry(tmp_path)
    m = _register(reg)
    reg.set_stage(m.name, m.version, "champion")
    manifest = reg.version_dir(m.name, m.version) / "manifest.json"
    assert manifest.stat().st_mode & 0o777 == 0o644
