"""What a clinic declares about a model trained elsewhere, and the site's acceptance bar.

Both are small YAML files validated here; every error names the file, the line, the field and
the value (`shared.config.loader`). The declaration is mapped onto the one serving
preprocessing (`shared.preprocess.PreprocessSpec`): anything that spec cannot express
(BGR input, 0-255 mean/std, a probabilities output) is adapted in the model's graph on import,
never by a second preprocessing path at serving time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from shared.config.base import StrictModel
from shared.config.loader import load_config
from shared.errors import ConfigError
from shared.preprocess import PreprocessSpec
from shared.registry.calibration import calibration_problems

Task = Literal["quality", "triage", "grader"]
DEFAULT_NAMES: dict[str, str] = {
    "quality": "fundus-quality",
    "triage": "fundus-triage",
    "grader": "fundus-grader",
}
GRADER_LABELS = ["grade0", "grade1", "grade2", "grade3", "grade4"]
# what the serving code reads off each task's manifest (edge/clinic/pipeline.py, triage.py,
# cloud/model_loading.py): a label and a threshold the pipeline looks up by name
REQUIRED_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "quality": ("reject",),
    "triage": ("refer", "clear"),
    "grader": ("referable",),
}
REQUIRED_LABELS: dict[str, tuple[str, ...]] = {
    "quality": ("reject",),
    "triage": ("referable",),
    "grader": tuple(GRADER_LABELS),
}


class DeclaredPreprocess(StrictModel):
    """The input the model was trained on, in the model's own terms."""

    input_size: int = Field(..., ge=16, le=1024, description="square input side in pixels")
    colour_order: Literal["RGB", "BGR"] = Field("RGB", description="channel order of the input")
    value_scale: Literal[1, 255] = Field(
        1, description="1: mean/std are in 0-1 units; 255: in 0-255 units (torchvision: 1)"
    )
    mean: tuple[float, float, float] = Field(..., description="per channel, in colour_order")
    std: tuple[float, float, float] = Field(..., description="per channel, in colour_order")
    crop_to_fov: bool = Field(True, description="crop to the fundus disc before resizing")
    fov_threshold: int = Field(20, ge=1, le=254, description="grey level of the FOV mask")

    @model_validator(mode="after")
    def _positive_std(self) -> DeclaredPreprocess:
        if min(self.std) <= 0:
            raise ValueError(f"std {list(self.std)} must be > 0 in every channel")
        return self

    def serving_spec(self) -> PreprocessSpec:
        """The serving spec (RGB, 0-1 units); a BGR model gets its channels flipped in-graph."""
        scale = float(self.value_scale)
        mean = [m / scale for m in self.mean]
        std = [s / scale for s in self.std]
        if self.colour_order == "BGR":
            mean, std = mean[::-1], std[::-1]
        return PreprocessSpec(
            size=self.input_size,
            crop_to_fov=self.crop_to_fov,
            fov_threshold=self.fov_threshold,
            mean=(mean[0], mean[1], mean[2]),
            std=(std[0], std[1], std[2]),
        )


class DeclaredIO(StrictModel):
    """Where the contract's tensors are: ONNX names, or TorchScript output tuple positions."""

    input: str = Field("input", description="ONNX input name (TorchScript: ignored)")
    logits: str | int = Field("logits", description="class scores [N, C]: name or position")
    features: str | int | None = Field(
        None, description="pooled features [N, D] for the edge OOD guard (optional)"
    )
    cam_activations: str | int | None = Field(
        None,
        description="grader: the CAM layer's activations [N, K, h, w], i.e. the last conv "
        "block's output that global average pooling and a linear head turn into logits",
    )
    output_kind: Literal["logits", "probabilities"] = Field(
        "logits", description="what the logits output holds: raw logits or softmax output"
    )


class ReferencePair(StrictModel):
    """A photograph and the model's raw output on it, as computed where the model was trained."""

    image: Path = Field(..., description="image file, relative to the declaration")
    output: list[float] = Field(..., min_length=1, description="the logits output, one image")
    tolerance: float = Field(1e-3, gt=0, le=1, description="largest allowed abs difference")


class Declaration(StrictModel):
    """`edgeward models import` input: the model file and what it expects."""

    task: Task = Field(..., description="quality | triage | grader")
    name: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9._-]*$", description="registry name (default by task)"
    )
    format: Literal["onnx", "torchscript"] = Field("onnx", description="model file format")
    model_file: Path = Field(..., description="model file, relative to the declaration")
    preprocess: DeclaredPreprocess
    io: DeclaredIO = Field(default_factory=DeclaredIO)
    labels: list[str] = Field(..., min_length=2, description="class names, in output order")
    thresholds: dict[str, float] = Field(..., description="operating thresholds, each 0-1")
    temperature: float = Field(1.0, gt=0, description="calibration temperature of the logits")
    calibration: dict[str, Any] = Field(
        default_factory=dict,
        description="a calibration record as in a manifest (kind: temperature | "
        "vector_scaling, with its scale and bias); empty: softmax(logits / temperature)",
    )
    references: list[ReferencePair] = Field(
        default_factory=list, description="parity pairs: image and expected raw output"
    )
    trained_on: str = Field("", max_length=2000, description="where the training data came from")

    @model_validator(mode="after")
    def _fits_task(self) -> Declaration:
        problems = calibration_problems(self.calibration, len(self.labels), "calibration")
        if problems:
            raise ValueError("; ".join(problems))
        for key, value in self.thresholds.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"thresholds.{key} is {value}; thresholds are within 0..1")
        missing = [k for k in REQUIRED_THRESHOLDS[self.task] if k not in self.thresholds]
        if missing:
            raise ValueError(
                f"thresholds {sorted(self.thresholds)} lack {missing}, which a {self.task} "
                "model needs"
            )
        if self.task == "grader" and self.labels != GRADER_LABELS:
            raise ValueError(f"labels {self.labels}: a grader's labels are {GRADER_LABELS}")
        absent = [k for k in REQUIRED_LABELS[self.task] if k not in self.labels]
        if absent:
            raise ValueError(f"labels {self.labels} lack {absent}, which a {self.task} needs")
        if self.task == "triage" and not self.thresholds["clear"] <= self.thresholds["refer"]:
            raise ValueError(
                f"thresholds.clear ({self.thresholds['clear']}) must be <= thresholds.refer "
                f"({self.thresholds['refer']})"
            )
        if self.format == "torchscript" and self.task != "grader":
            raise ValueError(
                f"format torchscript is for the cloud grader; a {self.task} net runs on the "
                "gateway and must be ONNX"
            )
        if self.task == "grader":
            if self.io.cam_activations is None:
                raise ValueError(
                    "io.cam_activations is required for a grader: name the output that holds "
                    "the last conv block's activations [N, K, h, w] (Grad-CAM is computed "
                    "from them)"
                )
            if self.io.output_kind != "logits":
                raise ValueError(
                    "io.output_kind is 'probabilities', but a grader must output raw logits "
                    "(its closed-form Grad-CAM needs logits = W·GAP(activations) + b)"
                )
        kinds = {type(v) for v in (self.io.logits, self.io.features, self.io.cam_activations)}
        want = int if self.format == "torchscript" else str
        if any(k not in (want, type(None)) for k in kinds):
            raise ValueError(
                f"io.logits/features/cam_activations must be {want.__name__}s for format "
                f"{self.format} (ONNX: output names; TorchScript: positions in the output "
                f"tuple); got {self.io.logits!r}, {self.io.features!r}, "
                f"{self.io.cam_activations!r}"
            )
        return self

    @property
    def registry_name(self) -> str:
        return self.name or DEFAULT_NAMES[self.task]


class AcceptanceBar(StrictModel):
    """The site's bar on `edgeward models evaluate`'s summary; a field left out is not checked."""

    min_labelled: int = Field(20, ge=1, description="fewest labelled images a verdict rests on")
    min_auc: float | None = Field(None, ge=0, le=1, description="grader referable AUC")
    max_ece: float | None = Field(None, ge=0, le=1, description="grader ECE of P(referable)")
    min_sensitivity: float | None = Field(None, ge=0, le=1, description="at the operating point")
    min_specificity: float | None = Field(None, ge=0, le=1, description="at the operating point")
    max_retake_rate: float | None = Field(None, ge=0, le=1, description="edge retake share")
    min_all_clear_on_non_referable: float | None = Field(
        None, ge=0, le=1, description="edge no_immediate_concern share of healthy images"
    )
    max_all_clear_on_referable: int | None = Field(
        0, ge=0, description="edge no_immediate_concern count on referable images (default 0)"
    )
    max_review_band_share: float | None = Field(
        None, ge=0, le=1, description="share of images in the grader's review band"
    )


def load_declaration(path: Path) -> tuple[Declaration, Path]:
    """The validated declaration and its folder (relative paths resolve against it)."""
    declaration = load_config(path, Declaration)
    base = path.resolve().parent
    model = base / declaration.model_file
    if not model.is_file():
        raise ConfigError(
            f"{path}: model_file {str(declaration.model_file)!r} is not a file ({model}); "
            "give the path of the exported model relative to the declaration"
        )
    for i, ref in enumerate(declaration.references):
        if not (base / ref.image).is_file():
            raise ConfigError(
                f"{path}: references.{i}.image {str(ref.image)!r} is not a file "
                f"({base / ref.image})"
            )
    return declaration, base


def load_bar(path: Path) -> AcceptanceBar:
    return load_config(path, AcceptanceBar)
