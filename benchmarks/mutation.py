"""Mutation score of the safety cores: do the tests notice when a safety rule is broken?

Runs cosmic-ray over each target module in a private copy of the source tree (cosmic-ray mutates
files in place, so the working tree is never touched), one mutant at a time, with the target's
own fast tests as the judge. A mutant is *killed* when a test fails, *survived* when every test
still passes. Score = killed / (killed + survived); mutants that cannot even import
(incompetent) and mutants inside annotations the module never evaluates (equivalent) are left
out. Not a CI gate: `make mutation` or `edgeward bench mutation`, read the survivors.
"""

from __future__ import annotations

import argparse
import ast
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
            ("tests/unit/test_traffic_applier.py", "tests/unit/test_traffic_applier_properties.py"),
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
    equivalent: int = 0  # inside annotations the module never evaluates
    survivors: list[Survivor] = field(default_factory=list)

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


def _run_module(work: Path, module: str, target: Target, timeout_s: float) -> TargetScore:
    stem = module.replace("/", "_")
    config, session = work / f"{stem}.toml", work / f"{stem}.sqlite"
    config.write_text(_config(module, target.tests, timeout_s))
    init = _cosmic_ray("init", str(config), str(session), cwd=work)
    if init.returncode != 0:
        raise SystemExit(f"mutation: cosmic-ray init failed for {module}:\n{init.stderr[-2000:]}")
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
    return _score(session, target.name, module, (work / module).read_text())


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions of every annotation, when the module never evaluates them.

    Under `from __future__ import annotations` an annotation is a string no code reads, so a
    mutant inside one (`A | None` -> `A & None`) cannot change behaviour: it is equivalent, and
    counting it as a survivor would blame the tests for what no test can see.
    """
    tree = ast.parse(source)
    lazy = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    if not lazy:
        return []
    nodes: list[ast.expr] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.returns is not None:
            nodes.append(n.returns)
        elif isinstance(n, ast.arg | ast.AnnAssign) and n.annotation is not None:
            nodes.append(n.annotation)
    return [
        ((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0)) for a in nodes
    ]


def _inside(pos: tuple[int, int], spans: list[tuple[tuple[int, int], tuple[int, int]]]) -> bool:
    return any(start <= pos < end for start, end in spans)


def _score(session: Path, name: str, module: str, source: str) -> TargetScore:
    score = TargetScore(name)
    spans = annotation_spans(source)
    query = (
        "SELECT r.worker_outcome, r.test_outcome, r.diff, s.operator_name, s.start_pos_row, "
        "s.start_pos_col FROM work_results r JOIN mutation_specs s ON r.job_id = s.job_id"
    )
    with sqlite3.connect(session) as db:
        for worker, outcome, diff, operator, line, col in db.execute(query):
            if _inside((int(line), int(col)), spans):
                score.equivalent += 1
            # A mutant that hangs the tests is caught by the timeout: that counts as killed.
            elif str(outcome).lower() == "killed" or str(worker).lower() == "timeout":
                score.killed += 1
            elif str(outcome).lower() == "survived":
                score.survived += 1
                score.survivors.append(Survivor(module, operator, int(line), diff or ""))
            else:
                score.incompetent += 1
    return score


def run_targets(names: list[str], out: Path, timeout_s: float) -> list[TargetScore]:
    out.mkdir(parents=True, exist_ok=True)
    scores = []
    with tempfile.TemporaryDirectory(prefix="edgeward-mutation-") as tmp:
        work = Path(tmp)
        _copy_tree(work)
        for name in names:
            target = TARGETS[name]
            total = TargetScore(name)
            for module in target.modules:
                part = _run_module(work, module, target, timeout_s)
                total.killed += part.killed
                total.survived += part.survived
                total.incompetent += part.incompetent
                total.equivalent += part.equivalent
                total.survivors += part.survivors
            scores.append(total)
    report = [{**asdict(s), "score": round(s.score, 4)} for s in scores]
    (out / "mutation.json").write_text(json.dumps(report, indent=2))
    return scores


SUMMARY = "mutation score of the safety cores: do the tests catch a broken safety rule?"


def _target(name: str) -> str:
    if name not in TARGETS:
        raise argparse.ArgumentTypeError(
            f"unknown target {name!r}; choose from {', '.join(sorted(TARGETS))}"
        )
    return name


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


def run_from_args(args: argparse.Namespace) -> int:
    started = time.monotonic()
    scores = run_targets(list(args.targets) or sorted(TARGETS), args.out, args.timeout)
    for s in scores:
        print(
            f"{s.name}: {s.score:.1%} killed ({s.killed} killed, {s.survived} survived, "
            f"{s.incompetent} incompetent, {s.equivalent} in never-evaluated annotations)"
        )
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
