"""ONNX export, parity check, registry writes and PyTorch reloads on small real networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from models.architectures import FeatureNet, WithFeatures, build_architecture
from models.complexity import count_flops, count_params
from models.export import ParityError, check_parity, export_onnx
from models.loading import load_torch_model
from models.register import register_model
from shared.errors import EdgewardError, ModelRefusedError
from shared.preprocess import PreprocessSpec
from shared.registry import Registry

torch.set_num_threads(2)


def _tiny_edge_net() -> FeatureNet:
    torch.manual_seed(0)
    return build_architecture("edge_net", {"num_classes": 3, "widths": [8, 16, 32]}).eval()


class _DivergesOutsideExport(nn.Module):
    """Computes something else in eager mode than in the traced graph, as a buggy net might."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x).mean(dim=(2, 3))
        if not torch.onnx.is_in_onnx_export():
            y = y + 1e-3
        return y


def test_export_keeps_the_contract_names_and_a_dynamic_batch(tmp_path: Path) -> None:
    net = _tiny_edge_net()
    example = torch.randn(64, 3, 64, 64)
    parity = export_onnx(WithFeatures(net), example, tmp_path / "m.onnx", ["logits", "features"])
    assert parity["max_abs_diff"] <= 1e-4
    assert parity["n_images"] == 64
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["logits", "features"]
    assert isinstance(sess.get_inputs()[0].shape[0], str)  # symbolic batch axis
    logits, feats = sess.run(None, {"input": np.zeros((5, 3, 64, 64), np.float32)})
    assert logits.shape == (5, 3)
    assert feats.shape == (5, 32)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version >= 17


def test_export_fails_and_keeps_no_file_when_runtimes_disagree(tmp_path: Path) -> None:
    path = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match=r"disagree by up to 0\.001.*tolerance 0\.0001"):
        export_onnx(_DivergesOutsideExport().eval(), torch.randn(64, 3, 16, 16), path, ["logits"])
    assert not path.exists()


def test_parity_check_catches_a_perturbed_weight_in_the_onnx_file(tmp_path: Path) -> None:
    net = WithFeatures(_tiny_edge_net())
    example = torch.randn(64, 3, 64, 64)
    path = tmp_path / "m.onnx"
    export_onnx(net, example, path, ["logits", "features"])
    model = onnx.load(str(path))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    weights = numpy_helper.to_array(init).copy()
    weights += 0.05  # every weight of the largest layer
    init.CopyFrom(numpy_helper.from_array(weights, init.name))
    onnx.save(model, str(path))
    with pytest.raises(ParityError, match="ONNX Runtime and PyTorch disagree"):
        check_parity(net, path, example, ["logits", "features"])


def test_edge_net_is_small_and_its_flops_are_counted() -> None:
    net = build_architecture("edge_net", {"num_classes": 2, "widths": [16, 24, 32, 48, 64]})
    assert count_params(net) < 50_000
    flops = count_flops(net, 160)
    assert 1e6 < flops < 1e8
    assert count_flops(net, 320) > 3.5 * flops  # scales with the pixel count


def test_grader_exposes_its_last_block_for_grad_cam() -> None:
    net = build_architecture("resnet_grader", {"num_classes": 5, "widths": [8, 16, 24, 32]})
    seen: list[torch.Size] = []
    net.cam_target_layer().register_forward_hook(lambda _m, _i, out: seen.append(out.shape))
    out = net.eval()(torch.zeros(2, 3, 96, 96))
    assert out.shape == (2, 5)
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][1] == 32


def _register_tiny(reg: Registry, tmp_path: Path, **overrides: object) -> tuple[FeatureNet, str]:
    net = _tiny_edge_net()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    parity = export_onnx(
        WithFeatures(net),
        torch.randn(64, 3, 64, 64),
        tmp_path / "model.onnx",
        ["logits", "features"],
    )
    fields: dict[str, object] = {
        "preprocess": PreprocessSpec(size=64),
        "input_shape": ["batch", 3, 64, 64],
        "labels": ["good", "usable", "reject"],
        "thresholds": {"reject": 0.5},
        "operating_point": {"criterion": "test"},
        "metrics": {"accuracy": 0.5},
        "data_snapshot": {"id": "abc"},
        "parity": parity,
        "extra": {
            "architecture": {
                "name": "edge_net",
                "kwargs": {"num_classes": 3, "widths": [8, 16, 32]},
            }
        },
    }
    fields.update(overrides)
    m = register_model(
        reg,
        "tiny",
        "quality",
        {"onnx": tmp_path / "model.onnx", "pytorch": tmp_path / "model.pt"},
        fields,
    )
    return net, m.version


def test_registered_model_verifies_and_reloads_into_the_same_torch_net(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    net, version = _register_tiny(reg, tmp_path)
    assert version == "1"
    verified = reg.load("tiny", "1")
    assert verified.manifest.stage == "candidate"
    assert verified.manifest.preprocess_hash == PreprocessSpec(size=64).content_hash()
    again = load_torch_model(verified)
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(again(x), net(x))
    assert not again.training


def test_second_registration_gets_the_next_version(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    _register_tiny(reg, tmp_path)
    _, version = _register_tiny(reg, tmp_path)
    assert version == "2"
    assert [m.version for m in reg.versions("tiny")] == ["1", "2"]


def test_invalid_manifest_is_refused_and_leaves_no_version_directory(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    with pytest.raises(EdgewardError, match="manifest is invalid"):
        _register_tiny(reg, tmp_path, temperature=-1.0)
    assert reg.versions("tiny") == []
    assert not (tmp_path / "reg" / "tiny" / "1").exists()


def test_weights_that_do_not_fit_the_recorded_architecture_are_refused(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    wrong = {
        "architecture": {"name": "edge_net", "kwargs": {"num_classes": 5, "widths": [8, 16, 32]}}
    }
    _register_tiny(reg, tmp_path, extra=wrong)
    with pytest.raises(ModelRefusedError, match="does not fit architecture edge_net"):
        load_torch_model(reg.load("tiny", "1"))
