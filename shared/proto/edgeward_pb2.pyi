from collections.abc import Iterable as _Iterable
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar

from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from google.protobuf.internal import containers as _containers

DESCRIPTOR: _descriptor.FileDescriptor

class ScanUpload(_message.Message):
    __slots__ = ("content_type", "filename", "image", "metadata", "scan_id")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: str | None = ..., value: str | None = ...) -> None: ...

    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    image: bytes
    content_type: str
    filename: str
    metadata: _containers.ScalarMap[str, str]
    def __init__(
        self,
        scan_id: str | None = ...,
        image: bytes | None = ...,
        content_type: str | None = ...,
        filename: str | None = ...,
        metadata: _Mapping[str, str] | None = ...,
    ) -> None: ...

class ScanReceipt(_message.Message):
    __slots__ = ("scan_id", "status")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    status: str
    def __init__(self, scan_id: str | None = ..., status: str | None = ...) -> None: ...

class ScanQuery(_message.Message):
    __slots__ = ("scan_id",)
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    def __init__(self, scan_id: str | None = ...) -> None: ...

class ScanStatus(_message.Message):
    __slots__ = ("cloud_result_json", "confidence", "reasons", "scan_id", "verdict")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    verdict: str
    reasons: _containers.RepeatedScalarFieldContainer[str]
    confidence: float
    cloud_result_json: str
    def __init__(
        self,
        scan_id: str | None = ...,
        verdict: str | None = ...,
        reasons: _Iterable[str] | None = ...,
        confidence: float | None = ...,
        cloud_result_json: str | None = ...,
    ) -> None: ...

class EdgeVerdict(_message.Message):
    __slots__ = ("model_versions", "referable_probability", "verdict")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: str | None = ..., value: str | None = ...) -> None: ...

    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REFERABLE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    referable_probability: float
    model_versions: _containers.ScalarMap[str, str]
    def __init__(
        self,
        verdict: str | None = ...,
        referable_probability: float | None = ...,
        model_versions: _Mapping[str, str] | None = ...,
    ) -> None: ...

class GradeRequest(_message.Message):
    __slots__ = (
        "content_type",
        "edge",
        "image",
        "laterality",
        "model_id",
        "request_id",
        "scan_id",
        "site_id",
    )
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    EDGE_FIELD_NUMBER: _ClassVar[int]
    LATERALITY_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    image: bytes
    content_type: str
    site_id: str
    request_id: str
    model_id: str
    edge: EdgeVerdict
    laterality: str
    def __init__(
        self,
        scan_id: str | None = ...,
        image: bytes | None = ...,
        content_type: str | None = ...,
        site_id: str | None = ...,
        request_id: str | None = ...,
        model_id: str | None = ...,
        edge: EdgeVerdict | _Mapping | None = ...,
        laterality: str | None = ...,
    ) -> None: ...

class Region(_message.Message):
    __slots__ = ("height", "score", "width", "x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    width: int
    height: int
    score: float
    def __init__(
        self,
        x: int | None = ...,
        y: int | None = ...,
        width: int | None = ...,
        height: int | None = ...,
        score: float | None = ...,
    ) -> None: ...

class GradeResult(_message.Message):
    __slots__ = (
        "confidence",
        "grade_probabilities",
        "heatmap_png",
        "model_version",
        "needs_review",
        "referable_probability",
        "regions",
        "request_id",
        "review_reason",
        "scan_id",
        "verdict",
    )
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    GRADE_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    REFERABLE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    HEATMAP_PNG_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    NEEDS_REVIEW_FIELD_NUMBER: _ClassVar[int]
    REVIEW_REASON_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    grade_probabilities: _containers.RepeatedScalarFieldContainer[float]
    referable_probability: float
    confidence: float
    model_version: str
    verdict: str
    heatmap_png: bytes
    regions: _containers.RepeatedCompositeFieldContainer[Region]
    needs_review: bool
    review_reason: str
    request_id: str
    def __init__(
        self,
        scan_id: str | None = ...,
        grade_probabilities: _Iterable[float] | None = ...,
        referable_probability: float | None = ...,
        confidence: float | None = ...,
        model_version: str | None = ...,
        verdict: str | None = ...,
        heatmap_png: bytes | None = ...,
        regions: _Iterable[Region | _Mapping] | None = ...,
        needs_review: bool | None = ...,
        review_reason: str | None = ...,
        request_id: str | None = ...,
    ) -> None: ...

class ResultQuery(_message.Message):
    __slots__ = ("scan_id",)
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    def __init__(self, scan_id: str | None = ...) -> None: ...
