"""The kept cosmic-ray sessions of `benchmarks.mutation`: where they live, and their score.

One sqlite session per mutated module sits in the output folder next to the module's text as it
was mutated (`.source`), so a stopped run can be resumed and a finished one scored again. Here:
reading the mutants and verdicts out of a session, marking the known equivalents skipped before a
run, clearing survivors for `--resume`, and turning the verdicts into a `TargetScore`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import mutation_equivalents


@dataclass
class Survivor:
    module: str
    operator: str
    line: int
    diff: str


@dataclass
class TargetScore:
    name: str
    killed: int = 0
    survived: int = 0
    incompetent: int = 0
    equivalent: int = 0  # inside annotations the module never evaluates, or reviewed
    reviewed: int = 0  # of which on the reviewed list
    survivors: list[Survivor] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # reviewed entries no mutant matches now
    pending: int = 0  # not judged yet (a stopped run): --resume judges them

    def add(self, part: TargetScore) -> None:
        self.killed += part.killed
        self.survived += part.survived
        self.incompetent += part.incompetent
        self.equivalent += part.equivalent
        self.reviewed += part.reviewed
        self.survivors += part.survivors
        self.stale += part.stale
        self.pending += part.pending

    @property
    def score(self) -> float:
        judged = self.killed + self.survived
        return self.killed / judged if judged else 0.0


def session_files(out: Path, module: str) -> tuple[Path, Path]:
    """(cosmic-ray session, the module's text as mutated) of `module`, kept in `out`."""
    stem = module.replace("/", "_")
    return out / f"{stem}.sqlite", out / f"{stem}.source"


def count(session: Path, table: str) -> int:
    with sqlite3.connect(session) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def mutants(session: Path) -> list[tuple[str, str, int, int, int]]:
    """(job id, operator, line, column, occurrence) of every mutant in the session."""
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT job_id, operator_name, start_pos_row, start_pos_col, occurrence "
            "FROM mutation_specs"
        ).fetchall()
    return [(str(j), str(o), int(r), int(c), int(n)) for j, o, r, c, n in rows]


def equivalent_reason(module: str, source: str, session: Path) -> dict[str, str]:
    """job id -> why the mutant cannot change behaviour, for every mutant known equivalent."""
    spans = mutation_equivalents.annotation_spans(source)
    reviewed = mutation_equivalents.load()
    keys = mutation_equivalents.keys_of(module, source, mutants(session))
    out: dict[str, str] = {}
    for job, _operator, line, col, _ in mutants(session):
        if mutation_equivalents.inside((line, col), spans):
            out[job] = "annotation: never evaluated under `from __future__ import annotations`"
        elif keys[job] in reviewed:
            out[job] = "reviewed: " + reviewed[keys[job]].reason
    return out


def skip_equivalents(module: str, source: str, session: Path) -> None:
    """Record the known equivalents not yet judged as skipped: each would cost a full test run.

    A mutant already judged keeps its verdict: a reviewed entry never hides a kill.
    """
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with sqlite3.connect(session) as db:
        judged = {str(j) for (j,) in db.execute("SELECT job_id FROM work_results")}
    reasons = equivalent_reason(module, source, session)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for job, why in reasons.items():
            if job not in judged:
                db.set_result(job, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))


def resume(module: str, source: str, session: Path, mutated: Path) -> None:
    """Continue the kept session of `module`: forget its survivors, keep everything else.

    Refused unless the module's text is the one it was mutated from (the positions would be
    wrong otherwise). Killed stays killed: tests are only ever added between the runs.
    """
    if not session.exists() or not mutated.exists() or mutated.read_text() != source:
        raise SystemExit(
            f"mutation: --resume needs the session of {module} in {session.parent}, mutated "
            "from the module as it is now; run without --resume to start a new one"
        )
    with sqlite3.connect(session) as db:
        db.execute("DELETE FROM work_results WHERE lower(test_outcome) = 'survived'")


def score(session: Path, name: str, module: str, source: str) -> TargetScore:
    result = TargetScore(name)
    equivalent = equivalent_reason(module, source, session)
    keys = set(mutation_equivalents.keys_of(module, source, mutants(session)).values())
    result.stale = sorted(
        f"{k.operator} on `{k.source}`"
        for k in mutation_equivalents.load()
        if k.module == module and k not in keys
    )
    query = (
        "SELECT r.job_id, r.worker_outcome, r.test_outcome, r.diff, s.operator_name, "
        "s.start_pos_row FROM work_results r JOIN mutation_specs s ON r.job_id = s.job_id"
    )
    result.pending = count(session, "work_items") - count(session, "work_results")
    broken = mutation_equivalents.stillborn(source, mutants(session))
    with sqlite3.connect(session) as db:
        for job, worker, outcome, diff, operator, line in db.execute(query):
            # A mutant that hangs the tests is caught by the timeout: that counts as killed.
            # A kill beats a reviewed entry: the test proved the entry wrong.
            if job in broken:
                result.incompetent += 1
            elif str(outcome).lower() == "killed" or str(worker).lower() == "timeout":
                result.killed += 1
            elif job in equivalent:
                result.equivalent += 1
                result.reviewed += equivalent[job].startswith("reviewed")
            elif str(outcome).lower() == "survived":
                result.survived += 1
                result.survivors.append(Survivor(module, operator, int(line), diff or ""))
            else:
                result.incompetent += 1
    return result


def score_kept(out: Path, module: str) -> TargetScore:
    session, mutated = session_files(out, module)
    if not session.exists() or not mutated.exists():
        raise SystemExit(
            f"mutation: --score-only found no session of {module} in {out}; run it first"
        )
    return score(session, module, module, mutated.read_text())
