"""The review queue's cases on the cloud store's database: what a reviewer sees of one scan
(the edge's findings included) and their decision, which flows back to the site's gateway."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sqlalchemy import Connection, Engine, text

from shared.errors import EdgewardError
from shared.proto import edgeward_pb2 as pb

REVIEW_LABELS = ("grade0", "grade1", "grade2", "grade3", "grade4", "ungradable")


class UnknownCaseError(EdgewardError):
    """A review case id that the queue does not hold."""


class DecisionError(EdgewardError):
    """A reviewer decision that cannot be stored as given (bad label, no reviewer)."""


class DecisionConflictError(DecisionError):
    """The case was already decided with a different label."""


@dataclass(frozen=True)
class EdgeFindings:
    """What the gateway found before the cloud graded: quality findings and OOD scores."""

    reasons: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)
    ood: dict[str, float] = field(default_factory=dict)
    referable_probability: float | None = None

    @classmethod
    def from_proto(cls, edge: pb.EdgeVerdict) -> EdgeFindings | None:
        """None when the gateway sent no findings (an older gateway)."""
        has_p = edge.has_referable_probability
        if not (edge.reasons or edge.codes or edge.quality_scores or edge.ood_scores or has_p):
            return None
        return cls(
            reasons=list(edge.reasons),
            codes=list(edge.codes),
            quality=dict(edge.quality_scores),
            ood=dict(edge.ood_scores),
            referable_probability=float(edge.referable_probability) if has_p else None,
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | None) -> EdgeFindings | None:
        if not data:
            return None
        raw = json.loads(data)
        return cls(
            reasons=[str(r) for r in raw.get("reasons", [])],
            codes=[str(c) for c in raw.get("codes", [])],
            quality={str(k): float(v) for k, v in raw.get("quality", {}).items()},
            ood={str(k): float(v) for k, v in raw.get("ood", {}).items()},
            referable_probability=raw.get("referable_probability"),
        )


@dataclass(frozen=True)
class ReviewCase:
    """A scan a person must look at, with everything they need to decide."""

    scan_id: str
    site_id: str
    reason: str
    edge_verdict: str
    cloud_verdict: str
    referable_probability: float
    confidence: float
    model_version: str
    image: bytes
    content_type: str
    heatmap_png: bytes
    case_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    status: str = "open"
    label: str | None = None
    reviewer: str | None = None
    note: str | None = None
    decided_at: float | None = None
    edge_findings: EdgeFindings | None = None  # None: the gateway sent none (migration 5)

    def summary(self) -> dict[str, Any]:
        """The case without its image bytes (for listings)."""
        data = asdict(self)
        data.pop("image")
        data.pop("heatmap_png")
        return data


def _case(row: Any) -> ReviewCase:
    data = dict(row._mapping)
    data["image"] = bytes(data["image"])
    data["heatmap_png"] = bytes(data["heatmap_png"])
    data["edge_findings"] = EdgeFindings.from_json(data.get("edge_findings"))
    return ReviewCase(**data)


def _outcome(label: str) -> str:
    """The desk outcome a stored label stands for (referable from ICDR grade 2)."""
    if label == "ungradable":
        return "ungradable"
    return "refer" if label in ("grade2", "grade3", "grade4") else "no_referable"


class ReviewCaseTable:
    """The review queue (`review_cases`) on `self.engine`; CloudStore mixes it in."""

    engine: Engine

    @staticmethod
    def _insert_case(conn: Connection, case: ReviewCase) -> None:
        names = [f.name for f in fields(ReviewCase)]
        columns = ", ".join(names)
        marks = ", ".join(f":{c}" for c in names)
        values = {f.name: getattr(case, f.name) for f in fields(ReviewCase)}
        findings = case.edge_findings
        values["edge_findings"] = findings.to_json() if findings is not None else None
        conn.execute(
            text(
                f"INSERT INTO review_cases ({columns}) VALUES ({marks}) "
                "ON CONFLICT (scan_id) DO NOTHING"
            ),
            values,
        )

    def enqueue(self, case: ReviewCase) -> ReviewCase:
        with self.engine.begin() as conn:
            self._insert_case(conn, case)
            row = conn.execute(
                text("SELECT * FROM review_cases WHERE scan_id = :s"), {"s": case.scan_id}
            ).first()
        assert row is not None  # inserted now or before
        return _case(row)

    def cases(self, status: str | None = "open", limit: int = 100) -> list[ReviewCase]:
        query = "SELECT * FROM review_cases"
        args: dict[str, Any] = {"limit": limit}
        if status is not None:
            query += " WHERE status = :status"
            args["status"] = status
        query += " ORDER BY created_at LIMIT :limit"
        with self.engine.connect() as conn:
            rows = conn.execute(text(query), args).fetchall()
        return [_case(r) for r in rows]

    def case(self, case_id: str) -> ReviewCase:
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT * FROM review_cases WHERE case_id = :c"), {"c": case_id}
            ).first()
        if row is None:
            raise UnknownCaseError(
                f"review case {case_id!r} does not exist; list open cases with GET /v1/review"
            )
        return _case(row)

    def decide(self, case_id: str, label: str, reviewer: str, note: str = "") -> ReviewCase:
        if label not in REVIEW_LABELS:
            raise DecisionError(
                f"review case {case_id}: label {label!r} is not one of {', '.join(REVIEW_LABELS)}"
            )
        if not reviewer.strip():
            raise DecisionError(f"review case {case_id}: reviewer is empty; say who decided")
        with self.engine.begin() as conn:
            # One statement decides or re-confirms: two reviewers racing cannot both win.
            cur = conn.execute(
                text(
                    "UPDATE review_cases SET status = 'decided', label = :label, "
                    "reviewer = :reviewer, note = :note, decided_at = COALESCE(decided_at, :t) "
                    "WHERE case_id = :c AND (status = 'open' OR label = :label)"
                ),
                {
                    "label": label,
                    "reviewer": reviewer,
                    "note": note,
                    "t": time.time(),
                    "c": case_id,
                },
            )
            changed = cur.rowcount == 1
        case = self.case(case_id)  # raises UnknownCaseError for an unknown id
        if not changed:
            raise DecisionConflictError(
                f"review case {case_id} was already decided as {case.label!r} by {case.reviewer}; "
                "a different label needs a new case"
            )
        return case

    def review_decision(self, scan_id: str) -> pb.ReviewDecision | None:
        """The reviewer's decision on the scan's case, once decided (GetResult carries it)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT c.case_id, c.label, c.reviewer, c.note, c.decided_at, "
                    "c.model_version, u.role FROM review_cases c LEFT JOIN desk_users u "
                    "ON u.name = c.reviewer WHERE c.scan_id = :s AND c.status = 'decided'"
                ),
                {"s": scan_id},
            ).first()
        if row is None:
            return None
        m = row._mapping
        return pb.ReviewDecision(
            case_id=str(m["case_id"]),
            outcome=_outcome(str(m["label"])),
            label=str(m["label"]),
            reviewer=str(m["reviewer"]),
            role=str(m["role"] or "reviewer"),  # decided through the JSON API: no desk account
            note=str(m["note"] or ""),
            decided_at=float(m["decided_at"] or 0.0),
            model_version=str(m["model_version"]),
        )

    def labels(self) -> list[dict[str, Any]]:
        """Reviewer labels for retraining: scan, label, the model it corrects."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT scan_id, site_id, label, model_version, cloud_verdict, decided_at "
                    "FROM review_cases WHERE status = 'decided' ORDER BY decided_at"
                )
            ).fetchall()
        return [dict(r._mapping) for r in rows]
