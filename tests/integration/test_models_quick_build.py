"""`edgeward models build --quick` output: the ONNX contract, verification, stages and the CLI.

Uses the session `quick_registry` (built once per run); tests that modify it work on a copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models.loading import load_torch_model, load_torch_module
from models.register import register_model
from shared.cli import main
from shared.errors import EdgewardError, ModelRefusedError
from shared.preprocess import preprocess
from shared.registry import Registry
from sim.fundus.generator import generate_sample
from sim.fundus.nonfundus import nonfundus_images

FUNDUS = {
    "fundus-quality": ("quality", ["good", "usable", "reject"], {"reject"}),
    "fundus-triage": ("triage", ["not_referable", "referable"], {"refer", "clear", "mirror_gap"}),
    "fundus-grader": (
        "grader",
        ["grade0", "grade1", "grade2", "grade3", "grade4"],
        {"referable", "review_low", "review_high"},
    ),
}


@pytest.fixture
def registry_copy(quick_registry: Path, tmp_path: Path) -> Registry:
    shutil.copytree(quick_registry, tmp_path / "reg")
    return Registry(tmp_path / "reg")


def _scans() -> list[np.ndarray]:
    return [generate_sample(7, i, size=512).image_bgr for i in range(3)]


@pytest.mark.parametrize("name", sorted(FUNDUS))
def test_quick_build_gives_a_verified_champion_with_the_onnx_contract(
    quick_registry: Path, name: str
) -> None:
    task, labels, threshold_keys = FUNDUS[name]
    verified = Registry(quick_registry).load(name)  # the champion, checksums + preprocess hash
    m = verified.manifest
    assert m.stage == "champion" and m.task == task and m.labels == labels
    assert m.missing_for_promotion() == []
    assert set(m.thresholds) == threshold_keys
    assert m.parity["max_abs_diff"] <= 1e-4 and m.parity["n_images"] == 64
    assert len(m.data_snapshot["id"]) == 16 and m.data_snapshot["generator_version"]
    assert {"camera", "pigmentation", "laterality"} <= set(m.subgroup_metrics)
    assert m.subgroup_gap and m.metrics["ece"] >= 0

    sess = ort.InferenceSession(str(verified.path("onnx")), providers=["CPUExecutionProvider"])
    (inp,) = sess.get_inputs()
    size = m.preprocess.size
    assert inp.name == "input" and inp.shape[1:] == [3, size, size]
    assert isinstance(inp.shape[0], str)
    assert [o.name for o in sess.get_outputs()] == ["logits", "features"]
    batch = np.stack([preprocess(im, m.preprocess) for im in _scans()])
    logits, features = sess.run(None, {"input": batch})
    assert logits.shape == (3, len(labels))
    assert features.shape[0] == 3 and features.shape[1] <= 64
    assert m.calibration["kind"] in ("temperature", "vector_scaling")
    assert set(m.calibration["cv_ece"]) == {"temperature", "vector_scaling"}
    probs = m.probabilities(logits)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(1), 1.0)
    stages = m.extra["build_profile"]
    assert {"train", "calibrate_evaluate", "export_parity"} <= set(stages)
    assert stages["train"]["cpu_s"] > 0

    ood = m.extra["ood"]
    dim = features.shape[1]
    assert len(ood["feature_mean"]) == dim
    assert np.asarray(ood["feature_precision"]).shape == (dim, dim)
    assert ood["mahalanobis_threshold"] > 0 and np.isfinite(ood["energy_threshold"])
    assert ood["check"]["nonfundus_flagged"]  # separation measured on non-fundus images
    assert "brightness" in m.extra["reference"]["image"]
    assert m.extra["complexity"]["params"] > 0


def test_edge_nets_carry_an_int8_variant_with_its_accuracy_change(quick_registry: Path) -> None:
    for name in ("fundus-quality", "fundus-triage"):
        verified = Registry(quick_registry).load(name)
        assert "onnx_int8" in verified.manifest.artifacts
        assert "change_vs_fp32" in verified.manifest.extra["int8"]
        sess = ort.InferenceSession(
            str(verified.path("onnx_int8")), providers=["CPUExecutionProvider"]
        )
        x = np.stack([preprocess(im, verified.manifest.preprocess) for im in _scans()])
        logits, _ = sess.run(None, {"input": x})
        assert logits.shape[0] == 3 and np.isfinite(logits).all()


def test_traffic_counter_reloads_in_pytorch_for_the_eager_benchmark(quick_registry: Path) -> None:
    torch.set_num_threads(2)
    verified = Registry(quick_registry).load("traffic-counter")
    assert verified.manifest.extra["architecture"]["name"] == "counter_net"
    net = load_torch_module(verified)
    size = verified.manifest.preprocess.size
    x = np.random.default_rng(0).random((2, 3, size, size), np.float32)
    with torch.no_grad():
        torch_counts = net(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(verified.path("onnx")), providers=["CPUExecutionProvider"])
    assert np.abs(torch_counts - sess.run(None, {"input": x})[0]).max() <= 1e-4
    with pytest.raises(ModelRefusedError, match="CounterNet, not a fundus feature net"):
        load_torch_model(verified)


def test_torch_grader_reloads_and_matches_its_onnx_export(quick_registry: Path) -> None:
    torch.set_num_threads(2)
    verified = Registry(quick_registry).load("fundus-grader")
    net = load_torch_model(verified)
    x = np.stack([preprocess(im, verified.manifest.preprocess) for im in _scans()])
    with torch.no_grad():
        torch_logits = net(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(str(verified.path("onnx")), providers=["CPUExecutionProvider"])
    onnx_logits = sess.run(["logits"], {"input": x})[0]
    assert np.abs(torch_logits - onnx_logits).max() <= 1e-4
    assert isinstance(net.cam_target_layer(), torch.nn.Module)


def test_recorded_ood_definition_reproduces_the_factorys_own_separation_check(
    quick_registry: Path,
) -> None:
    """What a gateway computes from the manifest alone equals what the factory measured."""
    verified = Registry(quick_registry).load("fundus-quality")
    m = verified.manifest
    ood = m.extra["ood"]
    sess = ort.InferenceSession(str(verified.path("onnx")), providers=["CPUExecutionProvider"])
    seed, size = m.data_snapshot["seed"], m.data_snapshot["render_size"]
    by_kind: dict[str, list[bool]] = {}
    for s in range(seed, seed + 4):
        for kind, image in nonfundus_images(s, size).items():
            x = preprocess(image, m.preprocess)[None]
            logits, feats = sess.run(None, {"input": x})
            d = feats[0] - np.asarray(ood["feature_mean"])
            maha = float(np.sqrt(d @ np.asarray(ood["feature_precision"]) @ d))
            top = logits[0].max()
            energy = -(top + np.log(np.exp(logits[0] - top).sum()))
            flagged = maha > ood["mahalanobis_threshold"] or energy > ood["energy_threshold"]
            by_kind.setdefault(kind, []).append(bool(flagged))
    recorded = ood["check"]["nonfundus_flagged"]
    assert set(recorded) == set(by_kind)
    for kind, flags in by_kind.items():
        assert abs(np.mean(flags) - recorded[kind]["either"]) < 1e-9, kind


def _second_champion(reg: Registry, name: str) -> str:
    """Register a copy of the champion as a new version and promote it (archiving the first)."""
    first = reg.load(name)
    files = {
        kind: (first.directory / art.path, dict(art.meta))
        for kind, art in first.manifest.artifacts.items()
    }
    fields = first.manifest.model_dump(
        exclude={"name", "version", "task", "artifacts", "stage", "history", "created_at"}
    )
    fields["preprocess"] = first.manifest.preprocess
    new = register_model(reg, name, first.manifest.task, files, fields)
    reg.set_stage(name, new.version, "champion", reason="test")
    return new.version


def test_tampered_champion_is_refused_and_the_previous_champion_keeps_serving(
    registry_copy: Registry,
) -> None:
    reg = registry_copy
    first = reg.champion("fundus-triage")
    assert first is not None
    new_version = _second_champion(reg, "fundus-triage")
    onnx_path = reg.version_dir("fundus-triage", new_version) / "model.onnx"
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_path.write_bytes(bytes(data))

    with pytest.raises(ModelRefusedError, match=r"onnx artifact .*model\.onnx fails its checksum"):
        reg.load("fundus-triage")
    serving = reg.load_serving("fundus-triage")
    assert serving.manifest.version == first.version
    assert reg.champion("fundus-triage").version == new_version  # type: ignore[union-attr]


def test_promote_refuses_an_incomplete_manifest_and_says_what_is_missing(
    registry_copy: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = registry_copy
    champ = reg.load("fundus-quality")
    fields = champ.manifest.model_dump(
        exclude={
            "name",
            "version",
            "task",
            "artifacts",
            "stage",
            "history",
            "created_at",
            "thresholds",
            "metrics",
        }
    )
    fields["preprocess"] = champ.manifest.preprocess
    files = {"onnx": champ.path("onnx")}
    incomplete = register_model(reg, "fundus-quality", "quality", files, fields)
    code = main(
        [
            "models",
            "promote",
            "fundus-quality",
            incomplete.version,
            "--stage",
            "champion",
            "--registry",
            str(reg.root),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "manifest incomplete" in err and "thresholds" in err and "metrics" in err
    assert reg.champion("fundus-quality").version == champ.manifest.version  # type: ignore[union-attr]


def test_cli_list_show_and_promote(
    registry_copy: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(registry_copy.root)
    assert main(["models", "list", "--registry", root]) == 0
    table = capsys.readouterr().out
    for name in FUNDUS:
        assert name in table
    assert "champion" in table and "auc=" in table

    assert main(["models", "show", "fundus-grader", "--registry", root]) == 0
    shown = capsys.readouterr().out
    assert '"name": "fundus-grader"' in shown and "verification: OK" in shown

    new_version = _second_champion(registry_copy, "fundus-grader")
    assert main(["models", "promote", "fundus-grader", "1", "--stage", "champion",
                 "--registry", root]) == 0  # fmt: skip
    assert "fundus-grader:1 is now champion" in capsys.readouterr().out
    assert registry_copy.manifest("fundus-grader", new_version).stage == "archived"

    assert main(["models", "show", "fundus-nope", "--registry", root]) == 2
    assert "no model 'fundus-nope'" in capsys.readouterr().err


def test_build_refuses_an_unknown_model_name(tmp_path: Path) -> None:
    from models.build import build_all

    with pytest.raises(EdgewardError, match="unknown model 'fundus-foo' for --only"):
        build_all(
            Registry(tmp_path),
            quick=True,
            seed=0,
            only=["fundus-foo"],
            if_missing=False,
            cache_dir=tmp_path / "cache",
        )


def test_if_missing_skips_models_that_have_a_champion(
    registry_copy: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.build import build_all

    built = build_all(
        registry_copy,
        quick=True,
        seed=0,
        only=list(FUNDUS),
        if_missing=True,
        cache_dir=tmp_path / "cache",
    )
    assert built == []
    assert capsys.readouterr().out.count("exists, skipped") == 3


def test_a_champion_from_an_older_recipe_is_named_before_anyone_measures_it(
    registry_copy: Registry,
) -> None:
    from models.build import outdated_champions
    from models.recipe_record import RECORD_KEY

    assert outdated_champions(registry_copy) == []  # built by this code
    old = registry_copy.champion("fundus-quality")
    assert old is not None
    record = old.extra[RECORD_KEY]
    older = {**record, "model": {**record["model"], "size": 96}}
    registry_copy.save(old.model_copy(update={"extra": {**old.extra, RECORD_KEY: older}}))
    (line,) = outdated_champions(registry_copy)
    assert line.startswith(f"{old.model_id} was built from another recipe (model.size: 96 -> ")
    assert "edgeward models build --only fundus-quality" in line


def test_sim_datasets_names_the_folders_the_build_trained_on(
    quick_registry: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edgeward sim datasets` and `models build` agree on the data: same ids, same folders."""
    reg = Registry(quick_registry)
    fundus = reg.load("fundus-grader").manifest.data_snapshot
    counter = reg.load("traffic-counter").manifest.data_snapshot
    # the fixture's build ran here with the default --cache-dir
    assert main(["sim", "datasets", "--quick", "--out", ".cache/datasets"]) == 0
    out = capsys.readouterr().out
    assert f"fundus-{fundus['id']}" in out
    assert f"traffic-counter-{counter['train']['id']}" in out
    assert f"traffic-counter-{counter['test']['id']}" in out
    assert fundus["code"] and fundus["n_train"] == 200
