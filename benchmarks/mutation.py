"""Mutation score of the safety cores: do the tests notice when a safety rule is broken?

Runs cosmic-ray over each target module in a private copy of the source tree (cosmic-ray mutates
files in place, so the working tree is never touched), one mutant at a time, with the target's
own fast tests as the judge. A mutant is *killed* when a test fails, *survived* when every test
still passes. Score = killed / (killed + survived); mutants that are not valid Python or cannot
even import (incompetent), mutants inside annotations the module never evaluates and the reviewed
equivalents in `mutation_equivalents.toml` (each with its reason) are left out, and the last two
are not even run. Each module's cosmic-ray session is kept in the output folder, so `--resume`
can finish a stopped run and re-judge its survivors against new tests. Not a CI gate:
`make mutation` or `edgeward bench mutation`, read the survivors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from benchmarks import mutation_equivalents

REPO = Path(__file__).resolve().parents[1]
COPIED = ("shared", "edge", "cloud", "models", "sim", "benchmarks", "tests", "pyproject.toml")


@dataclass(frozen=True)
class Target:
    """One safety core and the tests that must guard it."""

    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "clinic-verdict",
            ("edge/clinic/verdict.py",),
            ("tests/unit/test_clinic_verdict.py",),
        ),
        Target(
            "traffic-safety",
            ("edge/traffic/safety_clock.py", "edge/traffic/program.py"),
            # the pure tests first: they kill most mutants in milliseconds, and a mutant that
            # loops forever in seconds (their timeout) instead of at the run's timeout
            (
                "tests/unit/test_traffic_safety_core.py",
                "tests/unit/test_traffic_program.py",
                "tests/unit/test_traffic_applier.py",
                "tests/unit/test_traffic_applier_properties.py",
            ),
        ),
    )
}


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


def _copy_tree(dest: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)


def _config(module: str, tests: tuple[str, ...], timeout_s: float) -> str:
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    return (
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout_s}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(' '.join(command))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def _cosmic_ray(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("cosmic-ray")
    # A mutation run wants a verdict, not hypothesis's minimal example: shrinking a killed
    # mutant's counterexample costs minutes each.
    env = {**os.environ, "EDGEWARD_NO_SHRINK": "1"}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, check=False, env=env
    )


def _count(session: Path, table: str) -> int:
    with sqlite3.connect(session) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _mutants(session: Path) -> list[tuple[str, str, int, int, int]]:
    """(job id, operator, line, column, occurrence) of every mutant in the session."""
    with sqlite3.connect(session) as db:
        rows = db.execute(
            "SELECT job_id, operator_name, start_pos_row, start_pos_col, occurrence "
            "FROM mutation_specs"
        ).fetchall()
    return [(str(j), str(o), int(r), int(c), int(n)) for j, o, r, c, n in rows]


def _equivalent_reason(module: str, source: str, session: Path) -> dict[str, str]:
    """job id -> why the mutant cannot change behaviour, for every mutant known equivalent."""
    spans = mutation_equivalents.annotation_spans(source)
    reviewed = mutation_equivalents.load()
    keys = mutation_equivalents.keys_of(module, source, _mutants(session))
    out: dict[str, str] = {}
    for job, _operator, line, col, _ in _mutants(session):
        if mutation_equivalents.inside((line, col), spans):
            out[job] = "annotation: never evaluated under `from __future__ import annotations`"
        elif keys[job] in reviewed:
            out[job] = "reviewed: " + reviewed[keys[job]].reason
    return out


def _skip_equivalents(module: str, source: str, session: Path) -> None:
    """Record the known equivalents not yet judged as skipped: each would cost a full test run.

    A mutant already judged keeps its verdict: a reviewed entry never hides a kill.
    """
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with sqlite3.connect(session) as db:
        judged = {str(j) for (j,) in db.execute("SELECT job_id FROM work_results")}
    reasons = _equivalent_reason(module, source, session)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for job, why in reasons.items():
            if job not in judged:
                db.set_result(job, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=why))


def _resume(module: str, source: str, session: Path, mutated: Path) -> None:
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


def _run_module(
    work: Path, module: str, target: Target, timeout_s: float, out: Path, *, resume: bool
) -> TargetScore:
    stem = module.replace("/", "_")
    config = work / f"{stem}.toml"
    # the session lives in the output folder from the start, so a stopped run can be resumed
    session, mutated = out / f"{stem}.sqlite", out / f"{stem}.source"
    config.write_text(_config(module, target.tests, timeout_s))
    source = (work / module).read_text()
    if resume:
        _resume(module, source, session, mutated)
    else:
        session.unlink(missing_ok=True)
        init = _cosmic_ray("init", str(config), str(session), cwd=work)
        if init.returncode != 0:
            raise SystemExit(
                f"mutation: cosmic-ray init failed for {module}:\n{init.stderr[-2000:]}"
            )
        mutated.write_text(source)
    _skip_equivalents(module, source, session)
    baseline = _cosmic_ray("baseline", str(config), cwd=work)
    if baseline.returncode != 0:
        raise SystemExit(
            f"mutation: the tests of {target.name} fail before any mutation "
            f"({' '.join(target.tests)}); fix them first:\n{baseline.stdout[-2000:]}"
        )
    total = _count(session, "work_items")
    done = threading.Event()
    bar = tqdm(total=total, desc=f"{target.name}: {module}", unit="mutant")

    def follow() -> None:
        while not done.wait(2.0):
            bar.n = _count(session, "work_results")
            bar.refresh()

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        run = _cosmic_ray("exec", str(config), str(session), cwd=work)
    finally:
        done.set()
        watcher.join()
        bar.n = _count(session, "work_results")
        bar.close()
    if run.returncode != 0:
        raise SystemExit(f"mutation: cosmic-ray exec failed for {module}:\n{run.stderr[-2000:]}")
    return _score(session, module, module, source)


def _score(session: Path, name: str, module: str, source: str) -> TargetScore:
    score = TargetScore(name)
    equivalent = _equivalent_reason(module, source, session)
    keys = set(mutation_equivalents.keys_of(module, source, _mutants(session)).values())
    score.stale = sorted(
        f"{k.operator} on `{k.source}`"
        for k in mutation_equivalents.load()
        if k.module == module and k not in keys
    )
    query = (
        "SELECT r.job_id, r.worker_outcome, r.test_outcome, r.diff, s.operator_name, "
        "s.start_pos_row FROM work_results r JOIN mutation_specs s ON r.job_id = s.job_id"
    )
    score.pending = _count(session, "work_items") - _count(session, "work_results")
    broken = mutation_equivalents.stillborn(source, _mutants(session))
    with sqlite3.connect(session) as db:
        for job, worker, outcome, diff, operator, line in db.execute(query):
            # A mutant that hangs the tests is caught by the timeout: that counts as killed.
            # A kill beats a reviewed entry: the test proved the entry wrong.
            if job in broken:
                score.incompetent += 1
            elif str(outcome).lower() == "killed" or str(worker).lower() == "timeout":
                score.killed += 1
            elif job in equivalent:
                score.equivalent += 1
                score.reviewed += equivalent[job].startswith("reviewed")
            elif str(outcome).lower() == "survived":
                score.survived += 1
                score.survivors.append(Survivor(module, operator, int(line), diff or ""))
            else:
                score.incompetent += 1
    return score


def run_targets(
    names: list[str],
    out: Path,
    timeout_s: float,
    *,
    module: str | None = None,
    resume: bool = False,
    score_only: bool = False,
) -> list[TargetScore]:
    """Score each target over its modules (only `module`, if given); per-module parts inside.

    `score_only` runs nothing: it scores the sessions kept in `out` as far as they got.
    """
    out = out.resolve()  # cosmic-ray runs in the private copy: a relative path would miss
    out.mkdir(parents=True, exist_ok=True)
    scores, parts = [], []
    with tempfile.TemporaryDirectory(prefix="edgeward-mutation-") as tmp:
        work = Path(tmp)
        if not score_only:
            _copy_tree(work)
        for name in names:
            target = TARGETS[name]
            total = TargetScore(name)
            for m in target.modules:
                if module is None or m == module:
                    if score_only:
                        part = _score_kept(out, m)
                    else:
                        part = _run_module(work, m, target, timeout_s, out, resume=resume)
                    total.add(part)
                    parts.append(part)
            scores.append(total)
    report = [{**asdict(s), "score": round(s.score, 4)} for s in [*scores, *parts]]
    (out / "mutation.json").write_text(json.dumps(report, indent=2))
    return [*scores, *parts]


def _score_kept(out: Path, module: str) -> TargetScore:
    stem = module.replace("/", "_")
    session, mutated = out / f"{stem}.sqlite", out / f"{stem}.source"
    if not session.exists() or not mutated.exists():
        raise SystemExit(
            f"mutation: --score-only found no session of {module} in {out}; run it first"
        )
    return _score(session, module, module, mutated.read_text())


SUMMARY = "mutation score of the safety cores: do the tests catch a broken safety rule?"


def _target(name: str) -> str:
    if name not in TARGETS:
        raise argparse.ArgumentTypeError(
            f"unknown target {name!r}; choose from {', '.join(sorted(TARGETS))}"
        )
    return name


def _module_of(names: list[str], module: str | None) -> str | None:
    if module is None:
        return None
    known = sorted({m for n in names for m in TARGETS[n].modules})
    if module not in known:
        raise SystemExit(
            f"mutation: --module {module!r} is not a module of {', '.join(names)}; "
            f"choose from {', '.join(known)}"
        )
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "targets",
        nargs="*",
        type=_target,
        metavar="TARGET",
        help="which safety cores (default: all): " + ", ".join(sorted(TARGETS)),
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "out" / "mutation",
        help="where mutation.json goes (default out/mutation)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds one mutant's test run may take"
    )
    parser.add_argument(
        "--module",
        metavar="PATH",
        help="mutate only this module of the target (e.g. edge/traffic/program.py)",
    )
    parser.add_argument(
        "--score-only",
        action="store_true",
        help="run nothing: score the sessions kept in --out as far as they got",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the sessions kept in --out: judge the mutants not yet run and re-judge "
        "the survivors against today's tests (the module must be unchanged; killed stay killed)",
    )


def run_from_args(args: argparse.Namespace) -> int:
    started = time.monotonic()
    names = list(args.targets) or sorted(TARGETS)
    module = _module_of(names, args.module)
    scores = run_targets(
        names,
        args.out,
        args.timeout,
        module=module,
        resume=args.resume,
        score_only=args.score_only,
    )
    for s in scores:
        print(
            f"{s.name}: {s.score:.1%} killed ({s.killed} killed, {s.survived} survived, "
            f"{s.incompetent} incompetent, {s.equivalent} equivalent: "
            f"{s.equivalent - s.reviewed} in never-evaluated annotations, {s.reviewed} reviewed"
            + (f"; {s.pending} not judged yet" if s.pending else "")
            + ")"
        )
        if s.name in TARGETS:
            continue  # its survivors are listed under its modules
        for stale in s.stale:
            print(f"  stale entry in {mutation_equivalents.LIST.name}: {stale}")
        for v in s.survivors:
            print(f"  survived: {v.module}:{v.line} {v.operator}")
            print("    " + "\n    ".join(v.diff.strip().splitlines()[-6:]))
    print(f"report: {args.out / 'mutation.json'} ({time.monotonic() - started:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mutation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
