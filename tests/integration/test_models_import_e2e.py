"""Bring your own model, end to end: tiny nets trained here on twin photographs, exported to
ONNX (edge nets, grader) and TorchScript (grader), imported with `edgeward models import`,
evaluated, promoted past the site's bar, then served unchanged by `edgeward edge check` and the
cloud grader (Grad-CAM included)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from torch import nn

from cloud.cam import LinearHead, cam_from_activations
from cloud.explain import model_view
from cloud.grading import GraderCore
from cloud.model_loading import load_grader, resolve
from edge.clinic.pipeline import ClinicPipeline
from shared.config.clinic import ClinicGatewayConfig
from shared.preprocess import PreprocessSpec, preprocess, to_tensor
from shared.registry import Registry
from shared.scan_decode import decode
from shared.security.signing import (
    PUBLIC_KEY_ENV,
    SIGNING_KEY_ENV,
    load_public_key,
    make_keypair,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
SIZE = 64
GRADES = [f"grade{i}" for i in range(5)]
VERDICTS = {"retake", "refer", "no_immediate_concern", "review", "rejected"}


def edgeward(
    *args: str | Path, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "shared.cli", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"edgeward {args} exit {done.returncode}:\n{done.stdout}\n{done.stderr}"
        )
    return done


class TinyFundusNet(nn.Module):
    """conv blocks -> GAP -> linear: (logits, pooled features, last block's activations)."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        acts = self.body(x)
        pooled = acts.mean((2, 3))
        return self.head(pooled), pooled, acts


class GraderOut(nn.Module):
    """The TorchScript grader's forward: (logits, CAM activations)."""

    def __init__(self, net: TinyFundusNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, _, acts = self.net(x)
        return logits, acts


def train(x: torch.Tensor, y: torch.Tensor, classes: int) -> TinyFundusNet:
    torch.manual_seed(0)
    net = TinyFundusNet(classes)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(12):
        for i in range(0, len(x), 32):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(net(x[i : i + 32])[0], y[i : i + 32])
            loss.backward()
            opt.step()
    return net.eval()


def export_onnx(net: nn.Module, path: Path) -> Path:
    names = ["scores", "embedding", "last_block"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.zeros(2, 3, SIZE, SIZE),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=names,
            dynamic_axes={n: {0: "n"} for n in ["image", *names]},
            opset_version=17,
        )
    return path


def write_declaration(path: Path, **fields: object) -> Path:
    path.write_text(yaml.safe_dump(fields, sort_keys=False))
    return path


def good_scan(folder: Path) -> Path:
    """A photograph the twin rendered without acquisition defects (the gate lets it through)."""
    with (folder / "labels.csv").open() as fh:
        return folder / next(r["file"] for r in csv.DictReader(fh) if r["quality"] == "good")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Twin photographs (train and evaluate), three trained nets and their declarations."""
    root = tmp_path_factory.mktemp("byom")
    edgeward(
        "sim", "fundus", "--n", "120", "--size", "192", "--seed", "21", "--out", root / "train"
    )
    edgeward("sim", "fundus", "--n", "32", "--size", "320", "--seed", "22", "--out", root / "eval")
    with (root / "train" / "labels.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    # BGR in 0-255 units for the triage net: the import must adapt it, not the gateway
    rgb = PreprocessSpec(size=SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    images = [decode((root / "train" / r["file"]).read_bytes())[0] for r in rows]
    x = torch.from_numpy(np.stack([preprocess(im, rgb) for im in images]))
    quality = {"good": 0, "usable": 1, "reject": 2}
    y_quality = torch.tensor([quality[r["quality"]] for r in rows])
    y_ref = torch.tensor([int(r["referable"]) for r in rows])
    y_grade = torch.tensor([int(r["grade"]) for r in rows])
    bgr_x = x.flip(1)  # the triage net is trained on BGR, as a site's OpenCV pipeline might
    export_onnx(train(x, y_quality, 3), root / "quality.onnx")
    export_onnx(train(bgr_x, y_ref, 2), root / "triage.onnx")
    grader = train(x, y_grade, 5)
    torch.jit.trace(GraderOut(grader), torch.zeros(2, 3, SIZE, SIZE)).save(str(root / "grader.pt"))
    export_onnx(grader, root / "grader.onnx")
    common = {
        "labels": None,
        "preprocess": {"input_size": SIZE, "mean": [0.5] * 3, "std": [0.25] * 3},
    }
    del common["labels"]
    io = {"input": "image", "logits": "scores", "features": "embedding"}
    write_declaration(
        root / "quality.yaml", task="quality", model_file="quality.onnx", io=io,
        labels=["good", "usable", "reject"], thresholds={"reject": 0.5}, **common,
    )  # fmt: skip
    write_declaration(
        root / "triage.yaml", task="triage", model_file="triage.onnx", io=io,
        preprocess={"input_size": SIZE, "colour_order": "BGR", "value_scale": 255,
                    "mean": [127.5] * 3, "std": [63.75] * 3},
        labels=["not_referable", "referable"], thresholds={"refer": 0.6, "clear": 0.2},
    )  # fmt: skip
    grader_fields = {
        "task": "grader", "labels": GRADES, **common,
        "thresholds": {"referable": 0.5, "review_low": 0.3, "review_high": 0.7},
        "trained_on": "120 twin photographs, seed 21",
    }  # fmt: skip
    write_declaration(
        root / "grader.yaml", format="torchscript", model_file="grader.pt",
        io={"logits": 0, "cam_activations": 1}, **grader_fields,
    )  # fmt: skip
    write_declaration(
        root / "grader-onnx.yaml", model_file="grader.onnx",
        io={"input": "image", "logits": "scores", "cam_activations": "last_block"},
        **grader_fields,
    )  # fmt: skip
    (root / "bar.yaml").write_text("min_labelled: 20\nmax_all_clear_on_referable: null\n")
    (root / "strict-bar.yaml").write_text("min_labelled: 20\nmin_auc: 0.9\n")
    return {"root": root, "eval": root / "eval", "registry": root / "registry"}


@pytest.fixture(scope="module")
def promoted(site: dict[str, Path]) -> dict[str, Any]:
    """The three imports promoted with the site's model-signing key: what the command said."""
    root = site["root"]
    private, public = make_keypair(root / "keys")
    done = edgeward(
        "models", "import", root / "quality.yaml", root / "triage.yaml", root / "grader.yaml",
        "--registry", site["registry"], "--images", site["eval"], "--bar", root / "bar.yaml",
        "--promote", "--out", root / "report",
        env={PUBLIC_KEY_ENV: str(public), SIGNING_KEY_ENV: str(private)},
    )  # fmt: skip
    return {"stdout": done.stdout, "public": public}


def test_imported_models_are_evaluated_promoted_and_served_unchanged(
    site: dict[str, Path], promoted: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promotion signs the imports; a gateway and a replica that trust only the public key
    serve them."""
    root, registry, public = site["root"], site["registry"], promoted["public"]
    trust = {PUBLIC_KEY_ENV: str(public)}
    out = promoted["stdout"]
    assert "registered fundus-triage:1 as a candidate" in out
    assert "TorchScript converted to ONNX" in out
    assert "CAM head: logits = W·GAP(cam_activations) + b holds (16 channels)" in out
    assert "promoted fundus-grader:1 to champion" in out
    assert (root / "report" / "report.html").is_file()
    reg = Registry(registry, trusted_key=load_public_key(public), use_env=False)
    for name, source in [("fundus-quality", "quality.onnx"), ("fundus-grader", "grader.pt")]:
        champion = reg.champion(name)
        assert champion is not None and reg.problems(champion) == []
        assert set(champion.signatures) == set(champion.artifacts)
        assert champion.operating_point["acceptance"]["met"] is True
        digest = hashlib.sha256((root / source).read_bytes()).hexdigest()
        assert champion.extra["imported"]["source_sha256"] == digest
        assert champion.metrics["n_labelled"] == 32.0

    # the gateway: its own offline command judges a photograph with the imported nets
    scan = good_scan(site["eval"])
    line = json.loads(
        edgeward(
            "edge", "check", "--measures", "--registry", registry, scan, env=trust
        ).stdout.splitlines()[-1]
    )
    assert line["verdict"] in VERDICTS and line["codes"] != ["internal_error"]
    assert line["model_versions"] == {"quality": "fundus-quality:1", "triage": "fundus-triage:1"}
    assert "too_small" not in line["codes"]
    # the gateway's OOD guard is on for both imported nets (reference from the site's photos)
    monkeypatch.setenv(PUBLIC_KEY_ENV, str(public))
    config = ClinicGatewayConfig(site_id="byom", registry_dir=registry, data_dir=root / "gw")
    pipeline = ClinicPipeline(config, backend="onnx-cpu")
    try:
        assert pipeline.ood_refs["quality"].present and pipeline.ood_refs["triage"].present
        assert pipeline.ood_refs["triage"].mean.shape == (16,)
    finally:
        pipeline.close()

    # the cloud grader: its Grad-CAM equals the closed form from the registered graph's
    # activations and the signed, fitted head
    verified = resolve(registry, "", "fundus-grader")
    image = decode(scan.read_bytes())[0]
    core = GraderCore(load_grader(verified), verified.manifest, runtime="auto")
    try:
        (graded,) = core.grade([image], keep_cam=True)
    finally:
        core.close()
    spec = verified.manifest.preprocess
    x = to_tensor(model_view(image, spec)[0], spec)[None]
    session = ort.InferenceSession(str(verified.path("onnx")), providers=["CPUExecutionProvider"])
    logits, acts = session.run(["logits", "cam_activations"], {"input": x})
    fitted = verified.manifest.extra["imported"]["cam_head"]
    head = LinearHead(np.float32(fitted["weight"]), np.float32(fitted["bias"]))
    want = cam_from_activations(acts, head, np.argmax(logits, axis=1), (SIZE, SIZE))[0]
    assert graded.cam is not None
    np.testing.assert_allclose(graded.cam, want, atol=1e-3)
    np.testing.assert_allclose(
        graded.probabilities, verified.manifest.probabilities(logits)[0], atol=1e-5
    )
    assert graded.heatmap_png.startswith(b"\x89PNG")


def test_grader_imported_as_onnx_grades_like_its_torchscript_import(
    site: dict[str, Path], promoted: dict[str, Any], tmp_path: Path
) -> None:
    """The same net imported as ONNX instead of TorchScript: the cloud grades it the same."""
    registry = tmp_path / "registry"
    shutil.copytree(site["registry"], registry)
    edgeward(
        "models", "import", site["root"] / "grader-onnx.yaml", "--registry", registry,
        "--images", site["eval"], "--bar", site["root"] / "bar.yaml", "--promote",
        "--out", tmp_path / "report",
    )  # fmt: skip
    scan = sorted((site["eval"] / "images").iterdir())[3]
    image = decode(scan.read_bytes())[0]
    cams: list[np.ndarray] = []
    for model_id in ("fundus-grader:1", "fundus-grader:2"):
        verified = resolve(registry, model_id, "fundus-grader")
        core = GraderCore(load_grader(verified), verified.manifest, runtime="auto")
        try:
            (g,) = core.grade([image], keep_cam=True)
        finally:
            core.close()
        assert g.cam is not None
        cams.append(g.cam)
    assert Registry(registry).champion("fundus-grader").version == "2"  # type: ignore[union-attr]
    np.testing.assert_allclose(cams[1], cams[0], atol=1e-3)


def test_model_below_the_bar_is_imported_but_not_promoted(
    site: dict[str, Path], promoted: dict[str, Any], tmp_path: Path
) -> None:
    """A grader with a zero head gives every image the same probability: AUC 0.5 < 0.9."""
    registry = tmp_path / "registry"
    shutil.copytree(site["registry"], registry)
    net = TinyFundusNet(5)
    nn.init.zeros_(net.head.weight)
    nn.init.zeros_(net.head.bias)
    torch.jit.trace(GraderOut(net), torch.zeros(2, 3, SIZE, SIZE)).save(str(tmp_path / "grader.pt"))
    fields = yaml.safe_load((site["root"] / "grader.yaml").read_text())
    write_declaration(tmp_path / "flat.yaml", **fields)
    done = edgeward(
        "models", "import", tmp_path / "flat.yaml", "--registry", registry,
        "--images", site["eval"], "--bar", site["root"] / "strict-bar.yaml", "--promote",
        "--out", tmp_path / "report", check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "min_auc: grader referable AUC is 0.5 < bar 0.9" in done.stdout
    reg = Registry(registry)
    assert reg.manifest("fundus-grader", "2").stage == "candidate"
    assert reg.manifest("fundus-grader", "2").metrics["auc"] == 0.5
    assert reg.champion("fundus-grader").version == "1"  # type: ignore[union-attr]
    # nor can it be promoted by hand past the failed bar
    refused = edgeward(
        "models", "promote", "fundus-grader", "2", "--stage", "champion", "--registry", registry,
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0
    assert "has not met the site's acceptance bar (min_auc: grader" in refused.stderr


def test_declaration_with_a_bad_field_is_refused_before_anything_is_registered(
    site: dict[str, Path], tmp_path: Path
) -> None:
    fields = yaml.safe_load((site["root"] / "quality.yaml").read_text())
    fields["preprocess"]["colour_order"] = "YUV"
    write_declaration(tmp_path / "bad.yaml", **fields)
    shutil.copy(site["root"] / "quality.onnx", tmp_path / "quality.onnx")
    done = edgeward(
        "models", "import", tmp_path / "bad.yaml", "--registry", tmp_path / "registry",
        "--images", site["eval"], check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "preprocess.colour_order" in done.stderr and "'YUV'" in done.stderr
    assert not (tmp_path / "registry").exists()
