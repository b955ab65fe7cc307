"""The desk's view of the review queue (by urgency), its append-only decision audit, and
second-opinion assignments, on the cloud store's database (migration 3)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from shared.errors import EdgewardError

OUTCOMES = ("refer", "no_referable", "ungradable", "second_opinion")
# Edge and cloud said opposite things: the most urgent kind of case.
_DISAGREE = (
    "CASE WHEN c.edge_verdict IN ('refer', 'no_immediate_concern') "
    "AND c.edge_verdict <> c.cloud_verdict THEN 0 ELSE 1 END"
)
# Open cases this user may take: not sent to another reviewer for a second opinion.
_VISIBLE = "c.status = 'open' AND (o.case_id IS NULL OR o.assigned_to = :me)"
_COLUMNS = (
    "c.case_id, c.scan_id, c.site_id, c.reason, c.edge_verdict, c.cloud_verdict, "
    "c.referable_probability, c.confidence, c.model_version, c.created_at, "
    f"o.requested_by, {_DISAGREE} AS disagree"
)


class SecondOpinionError(EdgewardError):
    """No reviewer other than the one asking can give a second opinion."""


@dataclass(frozen=True)
class QueueItem:
    case_id: str
    scan_id: str
    site_id: str
    reason: str
    edge_verdict: str
    cloud_verdict: str
    referable_probability: float
    confidence: float
    model_version: str
    created_at: float
    second_opinion_for: str | None  # who asked, when this case was sent to this user
    disagreement: bool


@dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class AuditRecord:
    record_id: str
    case_id: str
    scan_id: str
    reviewer: str
    outcome: str
    label: str | None
    note: str
    model_version: str
    assigned_to: str | None
    decided_at: float


def _item(row: Any) -> QueueItem:
    m = dict(row._mapping)
    disagree = m.pop("disagree") == 0
    asker = m.pop("requested_by")
    return QueueItem(**m, second_opinion_for=asker, disagreement=disagree)


class DeskRecords:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def queue(self, user: str, page: int = 1, per_page: int = 50) -> QueuePage:
        """Open cases `user` may take, most urgent first: tiers disagree, then the higher
        referable probability, then the longest wait."""
        page = max(1, page)
        base = (
            "FROM review_cases c LEFT JOIN desk_second_opinions o ON o.case_id = c.case_id "
            f"WHERE {_VISIBLE}"
        )
        with self.engine.connect() as conn:
            total = int(conn.execute(text(f"SELECT COUNT(*) {base}"), {"me": user}).scalar_one())
            rows = conn.execute(
                text(
                    f"SELECT {_COLUMNS} {base} ORDER BY disagree, c.referable_probability DESC, "
                    "c.created_at, c.case_id LIMIT :n OFFSET :o"
                ),
                {"me": user, "n": per_page, "o": (page - 1) * per_page},
            ).all()
        return QueuePage([_item(r) for r in rows], total, page, per_page)

    def next_case(self, user: str) -> str | None:
        items = self.queue(user, 1, 1).items
        return items[0].case_id if items else None

    def append(
        self,
        *,
        case_id: str,
        scan_id: str,
        reviewer: str,
        outcome: str,
        label: str | None,
        note: str,
        model_version: str,
        assigned_to: str | None = None,
    ) -> AuditRecord:
        """Add one audit record; records are never updated or deleted."""
        record = AuditRecord(
            uuid.uuid4().hex,
            case_id,
            scan_id,
            reviewer,
            outcome,
            label,
            note,
            model_version,
            assigned_to,
            time.time(),
        )
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO desk_decisions (record_id, case_id, scan_id, reviewer, outcome, "
                    "label, note, model_version, assigned_to, decided_at) VALUES (:record_id, "
                    ":case_id, :scan_id, :reviewer, :outcome, :label, :note, :model_version, "
                    ":assigned_to, :decided_at)"
                ),
                record.__dict__,
            )
        return record

    def trail(self, case_id: str | None = None, limit: int = 500) -> list[AuditRecord]:
        """The audit records of one case (or all), oldest first."""
        query = "SELECT * FROM desk_decisions"
        args: dict[str, Any] = {"n": limit}
        if case_id is not None:
            query += " WHERE case_id = :c"
            args["c"] = case_id
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(f"{query} ORDER BY decided_at DESC, record_id LIMIT :n"), args
            ).all()
        return [AuditRecord(**dict(r._mapping)) for r in reversed(rows)]

    def assign_second_opinion(self, case_id: str, asker: str) -> str:
        """Send the case to the reviewer, other than `asker`, with the fewest such cases."""
        with self.engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT u.name FROM desk_users u LEFT JOIN (SELECT o.assigned_to, COUNT(*) "
                    "AS n FROM desk_second_opinions o JOIN review_cases c ON c.case_id = "
                    "o.case_id WHERE c.status = 'open' GROUP BY o.assigned_to) w "
                    "ON w.assigned_to = u.name WHERE u.name <> :me "
                    "ORDER BY COALESCE(w.n, 0), u.name LIMIT 1"
                ),
                {"me": asker},
            ).first()
            if row is None:
                raise SecondOpinionError(
                    f"review case {case_id}: no reviewer other than {asker!r} can give a second "
                    "opinion; add one with `edgeward cloud users add NAME --role reviewer`"
                )
            conn.execute(
                text(
                    "INSERT INTO desk_second_opinions (case_id, requested_by, assigned_to, "
                    "requested_at) VALUES (:c, :me, :to, :t) ON CONFLICT (case_id) DO UPDATE "
                    "SET requested_by = excluded.requested_by, assigned_to = "
                    "excluded.assigned_to, requested_at = excluded.requested_at"
                ),
                {"c": case_id, "me": asker, "to": str(row[0]), "t": time.time()},
            )
        return str(row[0])

    def second_opinion(self, case_id: str) -> tuple[str, str] | None:
        """(asked by, assigned to) while the case waits for a second opinion."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT requested_by, assigned_to FROM desk_second_opinions WHERE case_id = :c"
                ),
                {"c": case_id},
            ).first()
        return None if row is None else (str(row[0]), str(row[1]))

    def edge_event(self, scan_id: str) -> dict[str, Any] | None:
        """The edge's verdict event for the scan as the MQTT bridge stored it (reasons, models)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                text("SELECT event FROM edge_verdicts WHERE scan_id = :s"), {"s": scan_id}
            ).first()
        if row is None:
            return None
        try:
            event = json.loads(row[0])
        except ValueError:
            return None
        return event if isinstance(event, dict) else None
