"""FLOPs of an ONNX model, counted from its graph: 2 × multiply-accumulates of Conv/Gemm/MatMul.

Element-wise ops (ReLU, Add, BatchNorm, pooling) are left out, as is usual for FLOP counts: they
are memory-bound and a small share of the arithmetic of these networks.
"""

from __future__ import annotations

from math import prod
from pathlib import Path
from typing import Any

from shared.errors import EdgewardError


def _shapes(model: Any) -> dict[str, list[int]]:
    import onnx

    shapes: dict[str, list[int]] = {}
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        dims = [
            d.dim_value if d.HasField("dim_value") else 0 for d in vi.type.tensor_type.shape.dim
        ]
        shapes[vi.name] = dims
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes


def _fix_batch(model: Any, batch: int) -> None:
    """Give every symbolic input dim the value `batch` so shape inference can resolve sizes."""
    for inp in model.graph.input:
        for dim in inp.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = batch


def count_flops(onnx_path: Path, batch: int = 1) -> dict[str, Any]:
    """FLOPs per call at `batch` ({"flops", "by_op", "unresolved"}): 2 × MACs."""
    import onnx

    try:
        model = onnx.load(str(onnx_path))
    except Exception as exc:
        raise EdgewardError(f"cannot read ONNX model {onnx_path}: {exc}") from None
    _fix_batch(model, batch)
    shapes = _shapes(model)
    by_op: dict[str, int] = {}
    unresolved: list[str] = []
    for node in model.graph.node:
        macs = _macs(node, shapes)
        if macs is None:
            if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
                unresolved.append(node.name or node.op_type)
            continue
        by_op[node.op_type] = by_op.get(node.op_type, 0) + 2 * macs
    return {"flops": sum(by_op.values()), "by_op": by_op, "unresolved": unresolved}


def _macs(node: Any, shapes: dict[str, list[int]]) -> int | None:
    def shape(i: int, io: str = "in") -> list[int] | None:
        names = node.input if io == "in" else node.output
        found = shapes.get(names[i]) if i < len(names) else None
        return found if found and all(d > 0 for d in found) else None

    if node.op_type in ("Conv", "ConvTranspose"):
        w, out, x = shape(1), shape(0, "out"), shape(0)
        if w is None or out is None or x is None:
            return None
        if node.op_type == "Conv":
            # out: N, Cout, *spatial; w: Cout, Cin/group, *kernel
            return out[0] * out[1] * prod(out[2:]) * w[1] * prod(w[2:])
        # ConvTranspose: every input pixel scatters a kernel; w: Cin, Cout/group, *kernel
        return x[0] * x[1] * prod(x[2:]) * w[1] * prod(w[2:])
    if node.op_type == "Gemm":
        a, out = shape(0), shape(0, "out")
        if a is None or out is None:
            return None
        trans_a = next((a_.i for a_ in node.attribute if a_.name == "transA"), 0)
        k = a[0] if trans_a else a[1]
        return out[0] * out[1] * k
    if node.op_type == "MatMul":
        a, out = shape(0), shape(0, "out")
        if a is None or out is None:
            return None
        return prod(out) * a[-1]
    return None
