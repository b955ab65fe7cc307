"""Mutation score of the safety cores: do the tests notice when a safety rule is broken?

Runs cosmic-ray over each target module in a private copy of the source tree (cosmic-ray mutates
files in place, so the working tree is never touched), one mutant at a time, with the target's
own fast tests as the judge. A mutant is *killed* when a test fails, *survived* when every test
still passes. Score = killed / (killed + survived); mutants that are not valid Python or cannot
even import (incompetent), mutants inside annotations the module never evaluates and the reviewed
equivalents in `mutation_equivalents.toml` (each with its reason) are left out, and the last two
are not even run. Each module's cosmic-ray session is kept in the output folder, so `--resume`
can finish a stopped run and re-judge its survivors against new tests. Not a CI gate:
`make mutation` or `edgeward bench mutation`, read the survivors. The kept sessions and their
scoring live in `benchmarks/mutation_sessions.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from benchmarks import mutation_equivalents
from benchmarks import mutation_sessions as sessions
from benchmarks.mutation_sessions import TargetScore

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


def _run_module(
    work: Path, module: str, target: Target, timeout_s: float, out: Path, *, resume: bool
) -> TargetScore:
    config = work / f"{module.replace('/', '_')}.toml"
    # the session lives in the output folder from the start, so a stopped run can be resumed
    session, mutated = sessions.session_files(out, module)
    config.write_text(_config(module, target.tests, timeout_s))
    source = (work / module).read_text()
    if resume:
        sessions.resume(module, source, session, mutated)
    else:
        session.unlink(missing_ok=True)
        init = _cosmic_ray("init", str(config), str(session), cwd=work)
        if init.returncode != 0:
            raise SystemExit(
                f"mutation: cosmic-ray init failed for {module}:\n{init.stderr[-2000:]}"
            )
        mutated.write_text(source)
    sessions.skip_equivalents(module, source, session)
    baseline = _cosmic_ray("baseline", str(config), cwd=work)
    if baseline.returncode != 0:
        raise SystemExit(
            f"mutation: the tests of {target.name} fail before any mutation "
            f"({' '.join(target.tests)}); fix them first:\n{baseline.stdout[-2000:]}"
        )
    total = sessions.count(session, "work_items")
    done = threading.Event()
    bar = tqdm(total=total, desc=f"{target.name}: {module}", unit="mutant")

    def follow() -> None:
        while not done.wait(2.0):
            bar.n = sessions.count(session, "work_results")
            bar.refresh()

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    try:
        run = _cosmic_ray("exec", str(config), str(session), cwd=work)
    finally:
        done.set()
        watcher.join()
        bar.n = sessions.count(session, "work_results")
        bar.close()
    if run.returncode != 0:
        raise SystemExit(f"mutation: cosmic-ray exec failed for {module}:\n{run.stderr[-2000:]}")
    return sessions.score(session, module, module, source)


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
                        part = sessions.score_kept(out, m)
                    else:
                        part = _run_module(work, m, target, timeout_s, out, resume=resume)
                    total.add(part)
                    parts.append(part)
            scores.append(total)
    report = [{**asdict(s), "score": round(s.score, 4)} for s in [*scores, *parts]]
    (out / "mutation.json").write_text(json.dumps(report, indent=2))
    return [*scores, *parts]


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
