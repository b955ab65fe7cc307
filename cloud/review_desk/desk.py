"""What a desk decision does: the store's decision (the flywheel's labels), the audit record,
the grader's label sink, or a second opinion sent to another reviewer. No HTTP here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cloud.review_desk.accounts import SESSION_TTL_S, Accounts, User
from cloud.review_desk.records import OUTCOMES, AuditRecord, DeskRecords, SecondOpinionError
from cloud.store import CloudStore, DecisionError, ReviewCase

log = logging.getLogger(__name__)
# (scan_id, label) -> the prediction log and the canary gate (the grader's canary_label)
LabelSink = Callable[[str, str], Awaitable[None]]
KEYS = {"r": "refer", "n": "no_referable", "u": "ungradable", "s": "second_opinion"}
# A one-key refer / no-refer carries no ICDR grade; unless the reviewer picks one, the label
# is the boundary grade of that side (referable from grade 2), which keeps the binary label
# the prediction log and canary use exact.
_GRADES = {"refer": (2, 3, 4), "no_referable": (0, 1)}


@dataclass(frozen=True)
class Decided:
    record: AuditRecord
    case: ReviewCase


def label_for(case_id: str, outcome: str, grade: int | None) -> str | None:
    """The store label of a desk outcome; None for a second opinion (the case stays open)."""
    if outcome not in OUTCOMES:
        raise DecisionError(
            f"review case {case_id}: outcome {outcome!r} is not one of {', '.join(OUTCOMES)}"
        )
    if outcome == "second_opinion":
        return None
    if outcome == "ungradable":
        return "ungradable"
    allowed = _GRADES[outcome]
    if grade is None:
        return f"grade{allowed[0]}"
    if grade not in allowed:
        raise DecisionError(
            f"review case {case_id}: grade {grade} does not fit {outcome!r} (grades "
            f"{', '.join(map(str, allowed))}); pick one of those or the other decision"
        )
    return f"grade{grade}"


class ReviewDesk:
    def __init__(
        self,
        store: CloudStore,
        on_label: LabelSink | None = None,
        session_ttl_s: float = SESSION_TTL_S,
    ) -> None:
        self.store = store
        self.accounts = Accounts(store.engine, session_ttl_s)
        self.records = DeskRecords(store.engine)
        self.on_label = on_label

    async def decide(
        self, user: User, case_id: str, outcome: str, grade: int | None, note: str
    ) -> Decided:
        """Record `user`'s decision on the case; the audit names the model version shown."""
        case = self.store.case(case_id)  # UnknownCaseError for an unknown id
        label = label_for(case_id, outcome, grade)
        if len(note) > 2000:
            raise DecisionError(f"review case {case_id}: note has {len(note)} characters; max 2000")
        waiting = self.records.second_opinion(case_id)
        if waiting is not None and waiting[1] != user.name and user.role != "admin":
            raise DecisionError(
                f"review case {case_id} waits for a second opinion from {waiting[1]!r}; "
                "it is theirs to decide"
            )
        if label is None:
            if case.status != "open":
                raise DecisionError(
                    f"review case {case_id} was already decided as {case.label!r}; "
                    "a second opinion is for open cases"
                )
            assignee = self.records.assign_second_opinion(case_id, user.name)
            record = self.records.append(
                case_id=case_id,
                scan_id=case.scan_id,
                reviewer=user.name,
                outcome=outcome,
                label=None,
                note=note,
                model_version=case.model_version,
                assigned_to=assignee,
            )
            return Decided(record, case)
        # The store's decision is what GET /v1/labels and retraining read, as from the API.
        # It runs first: a conflicting (already decided) case leaves no audit record claiming
        # a decision that did not happen.
        decided = self.store.decide(case_id, label, user.name, note)
        record = self.records.append(
            case_id=case_id,
            scan_id=case.scan_id,
            reviewer=user.name,
            outcome=outcome,
            label=label,
            note=note,
            model_version=case.model_version,
        )
        if self.on_label is not None:
            try:
                await self.on_label(case.scan_id, label)
            except Exception as exc:  # the decision is stored; the grader can miss one label
                log.warning(
                    "review desk: case %s label not passed to the grader (%s: %s); it stays "
                    "in the review store and GET /v1/labels",
                    case_id,
                    type(exc).__name__,
                    exc,
                )
        return Decided(record, decided)


__all__ = ["KEYS", "Decided", "ReviewDesk", "SecondOpinionError", "label_for"]
