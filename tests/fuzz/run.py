"""Run one fuzz target for a time budget under a memory cap; print a JSON summary.

    python -m tests.fuzz.run dicom --seconds 60 --memory-mb 768 [--engine atheris]

Hypothesis mutates the seed files (byte flips, boundary integers in header fields, inserts,
deletions, truncation, splices) and shrinks any failure to a small input; atheris, when
installed, does coverage-guided mutation from the same seeds. RLIMIT_AS caps the process at
its size after imports plus --memory-mb, so a parser that over-allocates fails with
MemoryError (a crash), and the summary reports the peak resident memory the inputs cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from tests.fuzz.targets import Target

# What atheris instruments for coverage feedback: our parsers and pydicom's readers.
_INSTRUMENT = [
    "shared.scan_decode",
    "shared.scan_dicom",
    "shared.messages",
    "shared.proto.parse",
    "edge.clinic.decode",
    "cloud.decode",
    "pydicom.filereader",
    "pydicom.values",
    "pydicom.dataelem",
    "pydicom.encaps",
    "pydicom.pixels",
]


def _targets(engine: str) -> dict[str, Target]:
    if engine != "atheris":
        from tests.fuzz.targets import TARGETS

        return TARGETS
    import atheris

    with atheris.instrument_imports(include=_INSTRUMENT):
        from tests.fuzz.targets import TARGETS
    return TARGETS


_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF)


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@st.composite
def mutated(draw: Any, seeds: list[bytes]) -> bytes:
    """A seed with a few structured mutations, or (rarely) arbitrary bytes."""
    if draw(st.integers(0, 19)) == 0:
        return bytes(draw(st.binary(max_size=512)))
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        size = max(len(data), 1)
        # Most structure (DICOM tags, JPEG/PNG headers) sits in the first 2 KB.
        pos = draw(st.integers(0, min(size, 2048) - 1) | st.integers(0, size - 1))
        op = draw(st.sampled_from(("byte", "int", "insert", "delete", "truncate", "splice")))
        if op == "byte" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "int":
            width, order = draw(st.sampled_from((("H", "<"), ("H", ">"), ("I", "<"), ("I", ">"))))
            value = draw(st.sampled_from(_INTERESTING)) & (0xFFFF if width == "H" else 0xFFFFFFFF)
            packed = value.to_bytes(2 if width == "H" else 4, "little" if order == "<" else "big")
            data[pos : pos + len(packed)] = packed
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[pos:]
        elif op == "splice":
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, max(len(other) - 1, 0)))
            data[pos:pos] = other[start : start + draw(st.integers(1, 256))]
    return bytes(data)


class Run:
    """Counts inputs and prints the summary line the Makefile and the tests read."""

    def __init__(self, target: str, engine: str, seconds: float, memory_mb: int) -> None:
        self.target, self.engine, self.memory_mb = target, engine, memory_mb
        self.inputs = 0
        self.started = time.monotonic()
        self.end = self.started + seconds
        self.base_kb = _status_kb("VmRSS")

    def summary(self) -> str:
        return json.dumps(
            {
                "target": self.target,
                "engine": self.engine,
                "inputs": self.inputs,
                "seconds": round(time.monotonic() - self.started, 1),
                "baseline_rss_mb": round(self.base_kb / 1024, 1),
                "peak_rss_mb": round(_status_kb("VmHWM") / 1024, 1),
                "memory_cap_mb": self.memory_mb,
            }
        )


def run_hypothesis(target: Target, run: Run) -> None:
    seeds = target.seeds()

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate, Phase.shrink],
    )
    @given(mutated(seeds))
    def one(data: bytes) -> None:
        run.inputs += 1
        target.check(data)

    for seed in seeds:
        target.check(seed)
    while time.monotonic() < run.end:
        one()
    print(run.summary())


def run_atheris(target: Target, run: Run, corpus_dir: Path) -> None:
    import atheris

    corpus_dir.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(target.seeds()):
        (corpus_dir / f"seed-{i}").write_bytes(seed)

    def one(data: bytes) -> None:
        run.inputs += 1
        target.check(data)
        if time.monotonic() > run.end:
            # libFuzzer ends the process from C, past Python's exit hooks: report first.
            print(run.summary(), flush=True)
            os._exit(0)

    crashes = corpus_dir.parent / "crashes"
    crashes.mkdir(parents=True, exist_ok=True)
    backstop = int(run.end - time.monotonic()) + 30
    args = [sys.argv[0], f"-max_total_time={backstop}", "-rss_limit_mb=0"]
    args += [f"-artifact_prefix={crashes}/", str(corpus_dir)]
    atheris.Setup(args, one)
    atheris.Fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=("dicom", "jpeg", "mqtt", "png", "proto"))
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--memory-mb", type=int, default=768)
    parser.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    parser.add_argument("--corpus", type=Path, default=Path(".cache/fuzz"))
    args = parser.parse_args(argv)
    target = _targets(args.engine)[args.target]
    warnings.simplefilter("ignore")  # pydicom warns on every odd tag; errors are what count
    target.seeds()  # import and warm everything before the cap and the baseline
    vm = _status_kb("VmSize") * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm + args.memory_mb * 2**20, hard))
    run = Run(args.target, args.engine, args.seconds, args.memory_mb)
    if args.engine == "atheris":
        run_atheris(target, run, args.corpus / args.target)
    else:
        run_hypothesis(target, run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
