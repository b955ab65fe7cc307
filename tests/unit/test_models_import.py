"""`edgeward models import` checks, with tiny untrained nets exported here (no evaluation)."""

from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch
import yaml
from torch import nn

from models.importer import checks, onnx_graph
from models.importer.acceptance import failed_bars
from models.importer.declaration import AcceptanceBar, load_bar, load_declaration
from models.importer.grader import fit_head
from models.importer.prepare import Prepared, prepare
from shared.errors import ConfigError, ModelRefusedError

REPO = Path(__file__).resolve().parents[2]
SIZE = 32


class TinyNet(nn.Module):
    """conv -> GAP -> linear; returns (scores, pooled features, last conv activations)."""

    def __init__(self, classes: int, softmax: bool = False, nonlinear_head: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 2, 1))
        self.head = nn.Linear(8, classes)
        self.softmax, self.nonlinear_head = softmax, nonlinear_head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        acts = torch.relu(self.conv(x))
        pooled = acts.mean((2, 3))
        scores = self.head(torch.tanh(pooled) if self.nonlinear_head else pooled)
        return (scores.softmax(1) if self.softmax else scores), pooled, acts


def export(net: nn.Module, path: Path, size: int = SIZE, dynamic: bool = True) -> Path:
    axes = {n: {0: "batch"} for n in ("pixels", "scores", "embedding", "last_conv")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net.eval(),
            (torch.zeros(2, 3, size, size),),
            str(path),
            dynamo=False,
            input_names=["pixels"],
            output_names=["scores", "embedding", "last_conv"],
            dynamic_axes=axes if dynamic else None,
            opset_version=17,
        )
    return path


def fundus_png(path: Path, seed: int) -> Path:
    """A bright disc on black, roughly what the decoder and the FOV crop expect."""
    rng = np.random.default_rng(seed)
    image = np.zeros((160, 160, 3), np.uint8)
    colour = tuple(int(c) for c in rng.integers(60, 230, 3))
    cv2.circle(image, (80, 80), 70, colour, -1)
    noise = rng.integers(0, 30, image.shape, dtype=np.uint8)
    image = np.asarray(cv2.add(image, noise), dtype=np.uint8)
    cv2.imwrite(str(path), image)
    return path


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    (tmp_path / "img").mkdir()
    return [fundus_png(tmp_path / "img" / f"{i}.png", i) for i in range(4)]


def declaration(tmp_path: Path, **overrides: object) -> Path:
    data: dict[str, object] = {
        "task": "triage",
        "model_file": "net.onnx",
        "preprocess": {"input_size": SIZE, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
        "io": {"input": "pixels", "logits": "scores", "features": "embedding"},
        "labels": ["not_referable", "referable"],
        "thresholds": {"refer": 0.6, "clear": 0.2},
    }
    data.update(overrides)
    path = tmp_path / "declaration.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def prepared(tmp_path: Path, images: list[Path], **overrides: object) -> Prepared:
    decl, base = load_declaration(declaration(tmp_path, **overrides))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return prepare(decl, base, images, work, lambda _line: None)


def test_triage_onnx_is_adapted_to_the_contract_and_described(
    tmp_path: Path, images: list[Path]
) -> None:
    export(TinyNet(2), tmp_path / "net.onnx")
    p = prepared(tmp_path, images)
    session = ort.InferenceSession(str(p.files["onnx"]), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["logits", "features"]
    assert p.fields["input_shape"] == ["batch", 3, SIZE, SIZE]
    assert p.fields["parity"]["max_abs_diff"] <= 1e-6
    sha = p.fields["extra"]["imported"]["source_sha256"]
    assert sha == __import__("hashlib").sha256((tmp_path / "net.onnx").read_bytes()).hexdigest()
    assert p.fields["data_snapshot"]["id"] == f"imported-{sha[:16]}"


def test_edge_net_with_features_gets_an_ood_reference_from_site_photographs(
    tmp_path: Path,
) -> None:
    (tmp_path / "img").mkdir()
    site = [fundus_png(tmp_path / "img" / f"{i}.png", i) for i in range(24)]
    export(TinyNet(2), tmp_path / "net.onnx")
    decl, base = load_declaration(declaration(tmp_path))
    lines: list[str] = []
    p = prepare(decl, base, site[:4], tmp_path, lines.append, site_files=site)
    ood = p.fields["extra"]["ood"]
    assert len(ood["feature_mean"]) == 8 and np.isfinite(ood["mahalanobis_threshold"])
    assert ood["fitted_on"]["train"] == 12 and ood["fitted_on"]["validation"] == 12
    few = prepare(decl, base, site[:4], tmp_path, lines.append, site_files=site[:10])
    assert "ood" not in few.fields["extra"]
    assert any("10 photographs < 20" in line for line in lines)


def test_bgr_model_with_255_units_serves_from_rgb_input(tmp_path: Path) -> None:
    """The serving spec (RGB, 0-1) plus the in-graph flip equals the model on its own input."""
    source = export(TinyNet(2), tmp_path / "net.onnx")
    decl, _ = load_declaration(
        declaration(
            tmp_path,
            preprocess={
                "input_size": SIZE,
                "colour_order": "BGR",
                "value_scale": 255,
                "mean": [100.0, 110.0, 120.0],
                "std": [50.0, 55.0, 60.0],
            },
        )
    )
    spec = decl.preprocess.serving_spec()
    assert spec.mean == pytest.approx((120 / 255, 110 / 255, 100 / 255))
    adapted = tmp_path / "adapted.onnx"
    onnx_graph.save(onnx_graph.adapt(onnx_graph.load_checked(source), decl, source), adapted)
    rgb = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3)).astype(np.float32)
    served = ((rgb / 255 - np.array(spec.mean)) / np.array(spec.std)).transpose(0, 3, 1, 2)
    bgr = rgb[..., ::-1]
    own = ((bgr - np.array([100.0, 110.0, 120.0])) / np.array([50.0, 55.0, 60.0])).transpose(
        0, 3, 1, 2
    )
    want = ort.InferenceSession(str(source)).run(["scores"], {"pixels": own.astype(np.float32)})
    got = ort.InferenceSession(str(adapted)).run(["logits"], {"input": served.astype(np.float32)})
    np.testing.assert_allclose(got[0], want[0], atol=1e-4)


def test_probabilities_output_becomes_logits_whose_softmax_is_the_model(
    tmp_path: Path, images: list[Path]
) -> None:
    export(TinyNet(2, softmax=True), tmp_path / "net.onnx")
    p = prepared(
        tmp_path, images, io={"input": "pixels", "logits": "scores", "output_kind": "probabilities"}
    )
    session = ort.InferenceSession(str(p.files["onnx"]), providers=["CPUExecutionProvider"])
    batch = checks.load_images(images, p.fields["preprocess"])
    (logits,) = session.run(["logits"], {"input": batch})
    np.testing.assert_allclose(np.exp(logits).sum(1), 1.0, atol=1e-5)


def test_raw_scores_declared_as_probabilities_are_refused(
    tmp_path: Path, images: list[Path]
) -> None:
    export(TinyNet(2), tmp_path / "net.onnx")
    with pytest.raises(ModelRefusedError, match="output_kind is 'probabilities'"):
        prepared(
            tmp_path,
            images,
            io={"input": "pixels", "logits": "scores", "output_kind": "probabilities"},
        )


def test_wrong_input_size_is_refused_naming_input_and_size(
    tmp_path: Path, images: list[Path]
) -> None:
    export(TinyNet(2), tmp_path / "net.onnx", size=48)
    with pytest.raises(ModelRefusedError, match=r"input 'pixels' has shape .*48.*input_size 32"):
        prepared(tmp_path, images)


def test_fixed_batch_is_refused_with_the_export_fix(tmp_path: Path, images: list[Path]) -> None:
    export(TinyNet(2), tmp_path / "net.onnx", dynamic=False)
    with pytest.raises(ModelRefusedError, match=r"fixed batch of 2.*dynamic_axes"):
        prepared(tmp_path, images)


def test_labels_that_do_not_fit_the_output_are_refused(tmp_path: Path, images: list[Path]) -> None:
    export(TinyNet(3), tmp_path / "net.onnx")
    with pytest.raises(ModelRefusedError, match=r"'scores' has shape \[4, 3\].*2 labels"):
        prepared(tmp_path, images)


def test_unknown_output_name_is_refused_with_the_graphs_names(
    tmp_path: Path, images: list[Path]
) -> None:
    export(TinyNet(2), tmp_path / "net.onnx")
    with pytest.raises(ModelRefusedError, match=r"io.logits is 'logits'.*\['embedding', "):
        prepared(tmp_path, images, io={"input": "pixels"})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"preprocess": {"input_size": SIZE, "mean": [0.5, 0.5], "std": [1, 1, 1]}},
            "preprocess.mean",
        ),
        ({"thresholds": {"refer": 0.6}}, r"lack \['clear'\]"),
        ({"thresholds": {"refer": 0.6, "clear": 1.5}}, "thresholds.clear is 1.5"),
        ({"labels": ["a", "b"]}, r"lack \['referable'\]"),
        ({"colour": "RGB"}, "colour: Extra inputs are not permitted"),
        ({"format": "torchscript"}, "format torchscript is for the cloud grader"),
        (
            {"calibration": {"kind": "vector_scaling", "scale": [1.0], "bias": [0.0, 0.0]}},
            "calibration: vector_scaling needs 'scale' as 2 numbers",
        ),
    ],
)
def test_bad_declaration_is_refused_naming_the_field(
    tmp_path: Path, override: dict[str, object], message: str
) -> None:
    (tmp_path / "net.onnx").write_bytes(b"not read before the declaration is valid")
    with pytest.raises(ConfigError, match=message) as err:
        load_declaration(declaration(tmp_path, **override))
    assert "declaration.yaml" in str(err.value)


def test_grader_without_cam_output_is_refused(tmp_path: Path) -> None:
    (tmp_path / "g.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"io\.cam_activations is required"):
        load_declaration(
            declaration(
                tmp_path,
                task="grader",
                format="torchscript",
                model_file="g.pt",
                io={"logits": 0},
                labels=[f"grade{i}" for i in range(5)],
                thresholds={"referable": 0.5},
            )
        )


def test_reference_pair_catches_a_wrong_colour_order(tmp_path: Path, images: list[Path]) -> None:
    """Reference output made with the model's true (BGR) preprocessing; declared RGB: refused."""
    net = TinyNet(2)
    export(net, tmp_path / "net.onnx")
    bgr = {"input_size": SIZE, "colour_order": "BGR", "mean": [0.2, 0.5, 0.8], "std": [0.25] * 3}
    decl, _ = load_declaration(declaration(tmp_path, preprocess=bgr))
    batch = checks.load_images(images[:1], decl.preprocess.serving_spec())[:, ::-1].copy()
    want = net(torch.from_numpy(batch))[0][0].detach().numpy().tolist()
    ref = [{"image": str(images[0]), "output": want, "tolerance": 1e-4}]
    assert (
        prepared(tmp_path, images, preprocess=bgr, references=ref).fields["parity"][
            "reference_pairs"
        ]
        == 1.0
    )
    rgb = {**bgr, "colour_order": "RGB"}
    with pytest.raises(ModelRefusedError, match=r"references.0 .*preprocessing"):
        prepared(tmp_path, images, preprocess=rgb, references=ref)


class TupleBody(nn.Module):
    def __init__(self, net: TinyNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, _, acts = self.net(x)
        return scores, acts


def test_cam_head_is_fitted_exactly_for_gap_linear_and_refused_otherwise() -> None:
    x = np.random.default_rng(0).uniform(-2, 2, (48, 3, SIZE, SIZE)).astype(np.float32)
    net = TinyNet(5)
    weight, bias = fit_head(TupleBody(net), x, "tiny")
    np.testing.assert_allclose(weight, net.head.weight.detach().numpy(), atol=1e-4)
    np.testing.assert_allclose(bias, net.head.bias.detach().numpy(), atol=1e-4)
    with pytest.raises(ModelRefusedError, match=r"not a linear function.*io\.cam_activations"):
        fit_head(TupleBody(TinyNet(5, nonlinear_head=True)), x, "tiny")


def test_failed_bars_name_field_value_and_bar() -> None:
    summary = {"n_labelled": 40, "auc": 0.8, "ece": 0.05, "retake_rate": 0.2, "sensitivity": None}
    bar = AcceptanceBar(min_auc=0.9, max_ece=0.1, max_retake_rate=0.1, min_sensitivity=0.8)
    failures = failed_bars(summary, bar)
    assert failures == [
        "min_auc: grader referable AUC is 0.8 < bar 0.9",
        "min_sensitivity: grader sensitivity could not be measured (no labelled images?)",
        "max_retake_rate: edge retake rate is 0.2 > bar 0.1",
        "max_all_clear_on_referable: edge all-clears on referable images could not be measured "
        "(no labelled images?)",
    ]
    summary |= {
        "auc": 0.95,
        "sensitivity": 0.9,
        "retake_rate": 0.1,
        "edge_all_clear_on_referable": 0,
    }
    assert failed_bars(summary, bar) == []


def test_bar_file_errors_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bar.yaml"
    path.write_text("min_auc: 0.9\nmax_ece: 2\n")
    with pytest.raises(ConfigError, match="line 2: max_ece"):
        load_bar(path)


def test_sample_files_in_deploy_validate() -> None:
    bar = load_bar(REPO / "deploy/import/acceptance.yaml")
    assert bar.min_auc == 0.9
    with pytest.raises(ConfigError, match=r"model_file 'grader\.pt' is not a file"):
        load_declaration(REPO / "deploy/import/grader.yaml")
