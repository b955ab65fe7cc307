from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScanUpload(_message.Message):
    __slots__ = ("scan_id", "image", "content_type", "filename", "metadata")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
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
    def __init__(self, scan_id: _Optional[str] = ..., image: _Optional[bytes] = ..., content_type: _Optional[str] = ..., filename: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScanReceipt(_message.Message):
    __slots__ = ("scan_id", "status")
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    status: str
    def __init__(self, scan_id: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ScanQuery(_message.Message):
    __slots__ = ("scan_id",)
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    def __init__(self, scan_id: _Optional[str] = ...) -> None: ...

class ScanStatus(_message.Message):
    __slots__ = ("scan_id", "verdict", "reasons", "confidence", "cloud_result_json")
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
    def __init__(self, scan_id: _Optional[str] = ..., verdict: _Optional[str] = ..., reasons: _Optional[_Iterable[str]] = ..., confidence: _Optional[float] = ..., cloud_result_json: _Optional[str] = ...) -> None: ...

class EdgeVerdict(_message.Message):
    __slots__ = ("verdict", "referable_probability", "model_versions", "reasons", "codes", "quality_scores", "ood_scores", "has_referable_probability")
    class ModelVersionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class QualityScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class OodScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REFERABLE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    QUALITY_SCORES_FIELD_NUMBER: _ClassVar[int]
    OOD_SCORES_FIELD_NUMBER: _ClassVar[int]
    HAS_REFERABLE_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    referable_probability: float
    model_versions: _containers.ScalarMap[str, str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    codes: _containers.RepeatedScalarFieldContainer[str]
    quality_scores: _containers.ScalarMap[str, float]
    ood_scores: _containers.ScalarMap[str, float]
    has_referable_probability: bool
    def __init__(self, verdict: _Optional[str] = ..., referable_probability: _Optional[float] = ..., model_versions: _Optional[_Mapping[str, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., codes: _Optional[_Iterable[str]] = ..., quality_scores: _Optional[_Mapping[str, float]] = ..., ood_scores: _Optional[_Mapping[str, float]] = ..., has_referable_probability: _Optional[bool] = ...) -> None: ...

class GradeRequest(_message.Message):
    __slots__ = ("scan_id", "image", "content_type", "site_id", "request_id", "model_id", "edge", "laterality")
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
    def __init__(self, scan_id: _Optional[str] = ..., image: _Optional[bytes] = ..., content_type: _Optional[str] = ..., site_id: _Optional[str] = ..., request_id: _Optional[str] = ..., model_id: _Optional[str] = ..., edge: _Optional[_Union[EdgeVerdict, _Mapping]] = ..., laterality: _Optional[str] = ...) -> None: ...

class Region(_message.Message):
    __slots__ = ("x", "y", "width", "height", "score")
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
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class GradeResult(_message.Message):
    __slots__ = ("scan_id", "grade_probabilities", "referable_probability", "confidence", "model_version", "verdict", "heatmap_png", "regions", "needs_review", "review_reason", "request_id", "timings_s", "review")
    class TimingsSEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
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
    TIMINGS_S_FIELD_NUMBER: _ClassVar[int]
    REVIEW_FIELD_NUMBER: _ClassVar[int]
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
    timings_s: _containers.ScalarMap[str, float]
    review: ReviewDecision
    def __init__(self, scan_id: _Optional[str] = ..., grade_probabilities: _Optional[_Iterable[float]] = ..., referable_probability: _Optional[float] = ..., confidence: _Optional[float] = ..., model_version: _Optional[str] = ..., verdict: _Optional[str] = ..., heatmap_png: _Optional[bytes] = ..., regions: _Optional[_Iterable[_Union[Region, _Mapping]]] = ..., needs_review: _Optional[bool] = ..., review_reason: _Optional[str] = ..., request_id: _Optional[str] = ..., timings_s: _Optional[_Mapping[str, float]] = ..., review: _Optional[_Union[ReviewDecision, _Mapping]] = ...) -> None: ...

class ReviewDecision(_message.Message):
    __slots__ = ("case_id", "outcome", "label", "reviewer", "role", "note", "decided_at", "model_version")
    CASE_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    REVIEWER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    case_id: str
    outcome: str
    label: str
    reviewer: str
    role: str
    note: str
    decided_at: float
    model_version: str
    def __init__(self, case_id: _Optional[str] = ..., outcome: _Optional[str] = ..., label: _Optional[str] = ..., reviewer: _Optional[str] = ..., role: _Optional[str] = ..., note: _Optional[str] = ..., decided_at: _Optional[float] = ..., model_version: _Optional[str] = ...) -> None: ...

class ResultQuery(_message.Message):
    __slots__ = ("scan_id",)
    SCAN_ID_FIELD_NUMBER: _ClassVar[int]
    scan_id: str
    def __init__(self, scan_id: _Optional[str] = ...) -> None: ...
