"""Rewrite an imported ONNX graph to edgeward's contract without touching its weights.

The contract every runtime plugin serves: one input `input` [N, 3, S, S] (RGB, normalised by
the manifest's spec) and outputs `logits`, optionally `features` and, for the grader,
`cam_activations`. A declared BGR input gets a channel-reversing Gather in front; a declared
probabilities output gets a Log behind (softmax(log p) = p, so serving's softmax is unchanged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.importer.declaration import Declaration
from shared.errors import ModelRefusedError

INPUT = "input"
ROLES = ("logits", "features", "cam_activations")
_PREFIX = "edgeward_import_"
PROBABILITY_FLOOR = 1e-12  # log(0) would make an -inf logit


def _refuse(source: Path, message: str) -> ModelRefusedError:
    return ModelRefusedError(f"{source}: {message}")


def load_checked(source: Path) -> onnx.ModelProto:
    """The model, after ONNX's own checker."""
    try:
        model = onnx.load(str(source))
        onnx.checker.check_model(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, OSError, ...
        raise _refuse(source, f"not a valid ONNX model ({type(exc).__name__}: {exc})") from None
    return model


def _dims(value: onnx.ValueInfoProto) -> list[int | str]:
    shape = value.type.tensor_type.shape
    return [d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in shape.dim]


def adapt(model: onnx.ModelProto, declaration: Declaration, source: Path) -> onnx.ModelProto:
    """A copy of `model` that meets the contract; refuses names or shapes that do not fit."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    initialisers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initialisers]
    io = declaration.io
    size = declaration.preprocess.input_size
    if [i.name for i in inputs] != [io.input]:
        raise _refuse(
            source,
            f"io.input is {io.input!r} but the graph's inputs are {[i.name for i in inputs]}; "
            "declare the one image input's name",
        )
    dims = _dims(inputs[0])
    if len(dims) != 4 or dims[1:] != [3, size, size]:
        raise _refuse(
            source,
            f"input {io.input!r} has shape {dims}, but preprocess.input_size {size} means "
            f"[batch, 3, {size}, {size}]; fix input_size or re-export the model",
        )
    if isinstance(dims[0], int):
        raise _refuse(
            source,
            f"input {io.input!r} has a fixed batch of {dims[0]}; export with a dynamic batch "
            f"axis (torch.onnx.export(..., dynamic_axes={{{io.input!r}: {{0: 'batch'}}}}))",
        )
    outputs = {o.name: o for o in graph.output}
    declared = {role: getattr(io, role) for role in ROLES if getattr(io, role) is not None}
    for role, name in declared.items():
        if name not in outputs:
            raise _refuse(
                source,
                f"io.{role} is {name!r} but the graph's outputs are {sorted(outputs)}; declare "
                "one of them",
            )
    # every declared tensor moves to a private name first, so the contract names are free
    renamed = {io.input: _PREFIX + "model_input"}
    renamed |= {name: f"{_PREFIX}out_{role}" for role, name in declared.items()}
    for node in graph.node:
        node.input[:] = [renamed.get(t, t) for t in node.input]
        node.output[:] = [renamed.get(t, t) for t in node.output]
    taken = {t for n in graph.node for t in [*n.input, *n.output]} | initialisers
    clash = sorted(taken & {INPUT, *declared})
    if clash:
        raise _refuse(
            source,
            f"the graph has internal tensors named {clash}, which edgeward's contract reserves "
            "for its input and outputs; rename them in the export",
        )

    # input: `input` (RGB) -> [Gather to BGR] -> the graph's own input
    inner = renamed[io.input]
    new_input = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, size, size])
    graph.input.remove(inputs[0])
    graph.input.insert(0, new_input)
    if declaration.preprocess.colour_order == "BGR":
        graph.initializer.append(
            numpy_helper.from_array(np.array([2, 1, 0], dtype=np.int64), _PREFIX + "bgr")
        )
        graph.node.insert(0, helper.make_node("Gather", [INPUT, _PREFIX + "bgr"], [inner], axis=1))
    else:
        graph.node.insert(0, helper.make_node("Identity", [INPUT], [inner]))

    # outputs: each declared role under its contract name; undeclared outputs are dropped
    new_outputs = []
    for role, name in declared.items():
        tensor = renamed[name]
        if role == "logits" and io.output_kind == "probabilities":
            floor = _PREFIX + "floor"
            graph.initializer.append(
                numpy_helper.from_array(np.array(PROBABILITY_FLOOR, dtype=np.float32), floor)
            )
            graph.node.extend(
                [
                    helper.make_node("Max", [tensor, floor], [_PREFIX + "p"]),
                    helper.make_node("Log", [_PREFIX + "p"], [_PREFIX + "logp"]),
                ]
            )
            tensor = _PREFIX + "logp"
        graph.node.append(helper.make_node("Identity", [tensor], [role]))
        info = onnx.ValueInfoProto()
        info.CopyFrom(outputs[name])
        info.name = role
        new_outputs.append(info)
    del graph.output[:]
    graph.output.extend(new_outputs)
    # value_info may still describe the old names; shapes are re-inferred by the runtime
    del graph.value_info[:]
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise _refuse(source, f"the adapted graph does not validate: {exc}") from None
    return model


def save(model: onnx.ModelProto, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
