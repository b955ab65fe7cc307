"""`edgeward bench`: every model on every backend this host offers, and the tiers around them.

Each sub-command writes results.json (with host facts), report.html and PNG charts into --out,
prints the path, and with --compare OLD.json prints per-metric ratios and flags regressions.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmarks.results import BenchRun, default_out_dir, load_results
from shared.cli_args import positive_int

SUITES: dict[str, str] = {
    "models": "every registered model on every backend here, across batch sizes, vs peak FLOP/s",
    "edge": "clinic pipeline per stage and end to end; traffic frame-to-aggregate path",
    "cloud": "closed-loop load on the Serve grader: concurrency, batching, Grad-CAM, naive peer",
    "mqtt": "N simulated gateways publishing QoS 1 through a real mosquitto to the cloud bridge",
    "traffic": "coordinator plan computation time against network size (10 to 2,000 junctions)",
}


def _threshold(text: str) -> float:
    value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"threshold {text!r} must be a fraction like 0.1 or 10%")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sweep and short budgets: the whole command finishes in under a minute (CI)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for results.json, report.html and charts (default out/bench/<time>-SUITE)",
    )
    p.add_argument(
        "--compare",
        type=Path,
        metavar="OLD.json",
        help="an older results.json: print new/old ratios per metric and flag regressions",
    )
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=0.10,
        help="a metric worse than OLD by more than this is a regression (default 0.10 = 10%%)",
    )
    p.add_argument(
        "--headline-only",
        action="store_true",
        help="with --compare, compare only the headline's figures (the ratios measured against "
        "a baseline in the same run), not each measurement's milliseconds: for suites whose "
        "absolute figures swing with the host's load (mqtt)",
    )


def _run(
    args: argparse.Namespace,
    suite: str,
    body: Callable[[BenchRun], None],
    failure: Callable[[BenchRun], str | None] = lambda run: None,
) -> int:
    """Run `body`, write and print the results; 1 on a regression or a `failure` message."""
    old = load_results(args.compare) if args.compare else None  # fail before measuring
    config = {
        k: (str(v) if isinstance(v, Path) else v)
        for k, v in vars(args).items()
        if k not in ("handler",) and not callable(v)
    }
    run = BenchRun(suite, args.out or default_out_dir(suite), args.quick, config)
    body(run)
    path = run.finish()
    print(f"results: {path}")
    print(f"report:  {path.parent / 'report.html'}")
    for key, value in run.headline.items():
        print(f"  {key}: {value}")
    code = 0
    if old is not None:
        from benchmarks.compare import compare, render

        changes, unmatched = compare(old, run.to_json(), headline_only=args.headline_only)
        text, regressions = render(changes, unmatched, args.threshold)
        print(text)
        code = 1 if regressions else 0
    problem = failure(run)
    if problem:
        print(f"bench {suite}: {problem}", file=sys.stderr)
        code = 1
    return code


def _models(args: argparse.Namespace) -> int:
    from benchmarks.suites.models import ModelsPlan, run_models

    plan = ModelsPlan.quick(args.registry) if args.quick else ModelsPlan(args.registry)
    plan = replace(plan, only=tuple(args.model or ()), backends=tuple(args.backend or ()))
    if args.threads:
        plan = replace(plan, threads=args.threads)
    if args.batch:
        plan = replace(plan, batch_sizes=tuple(args.batch))
    return _run(args, "models", lambda run: run_models(run, plan))


def _mqtt(args: argparse.Namespace) -> int:
    from benchmarks.suites.mqtt import MqttPlan, run_mqtt

    plan = MqttPlan.quick() if args.quick else MqttPlan()
    if args.gateways:
        plan = replace(plan, gateways=tuple(args.gateways))
    if args.messages:
        plan = replace(plan, messages_per_gateway=args.messages)
    if args.replicas:
        plan = replace(plan, replicas=args.replicas)
    plan = replace(plan, replicas_as=args.replicas_as)

    def lost(run: BenchRun) -> str | None:
        n = sum(r["metrics"]["lost"] for r in run.results)
        return f"{n} QoS 1 message(s) were LOST; that must never happen" if n else None

    return _run(args, "mqtt", lambda run: run_mqtt(run, plan), lost)


def _traffic(args: argparse.Namespace) -> int:
    from benchmarks.suites.traffic import TrafficPlan, run_traffic

    plan = TrafficPlan.quick() if args.quick else TrafficPlan()
    if args.sizes:
        plan = replace(plan, sizes=tuple(args.sizes))
    return _run(args, "traffic", lambda run: run_traffic(run, plan), _nothing_measured)


def _edge(args: argparse.Namespace) -> int:
    from benchmarks.suites.edge import EdgePlan, run_edge

    plan = EdgePlan.quick(args.registry) if args.quick else EdgePlan(args.registry)
    plan = replace(plan, backend=args.backend)
    return _run(args, "edge", lambda run: run_edge(run, plan), _nothing_measured)


def _cloud(args: argparse.Namespace) -> int:
    from benchmarks.suites.cloud import CloudPlan, run_cloud

    plan = CloudPlan.quick(args.registry) if args.quick else CloudPlan(args.registry)
    if args.concurrency:
        plan = replace(plan, concurrency=tuple(args.concurrency))
    if args.requests:
        plan = replace(plan, requests_per_level=args.requests)
    if args.replicas:
        plan = replace(plan, replicas=args.replicas)
    return _run(args, "cloud", lambda run: run_cloud(run, plan), _nothing_measured)


def _nothing_measured(run: BenchRun) -> str | None:
    if run.results:
        return None
    why = "; ".join(f"{u['what']}: {u['reason']}" for u in run.unavailable) or "no reason given"
    return f"nothing could be measured ({why})"


def _registry_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--registry", type=Path, default=Path("registry"), help="model registry (default registry)"
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bench",
        help="measure every model on every backend this host offers",
        description=(
            "Measure what this host does with edgeward's models and tiers, and how close it is "
            "to what the hardware could do. Every run writes results.json (with host facts), "
            "report.html and PNG charts, and prints where."
        ),
        epilog="See benchmarks/README.md for running on a Jetson or a GPU server.",
    )
    cmds = p.add_subparsers(dest="suite", metavar="SUITE", required=True)

    m = cmds.add_parser("models", help=SUITES["models"], description=SUITES["models"] + ".")
    _common(m)
    _registry_option(m)
    m.add_argument("--model", action="append", help="only this model name (repeatable)")
    m.add_argument(
        "--backend",
        action="append",
        help="only this backend: pytorch-eager, onnx-cpu, onnx-cpu-int8, onnx-cuda, "
        "onnx-tensorrt, tensorrt (repeatable; default every one available)",
    )
    m.add_argument("--batch", type=positive_int, action="append", help="batch size (repeatable)")
    m.add_argument(
        "--threads", type=positive_int, default=None, help="CPU threads per runtime (default 2)"
    )
    m.set_defaults(handler=_models)

    q = cmds.add_parser("mqtt", help=SUITES["mqtt"], description=SUITES["mqtt"] + ".")
    _common(q)
    q.add_argument(
        "--gateways", type=positive_int, action="append", help="gateway count (repeatable)"
    )
    q.add_argument("--messages", type=positive_int, help="messages per gateway in the paced phase")
    q.add_argument(
        "--replicas",
        type=positive_int,
        help="bridge replicas on the shared subscription (default 2)",
    )
    q.add_argument(
        "--replicas-as",
        choices=("processes", "threads"),
        default="processes",
        help="run each bridge replica in its own process, as Serve does (default), or all as "
        "threads of the bench process (one GIL: adding a replica adds no capacity)",
    )
    q.set_defaults(handler=_mqtt)

    e = cmds.add_parser("edge", help=SUITES["edge"], description=SUITES["edge"] + ".")
    _common(e)
    _registry_option(e)
    e.add_argument(
        "--backend", default="onnx-cpu", help="edge inference backend (default onnx-cpu; or auto)"
    )
    e.set_defaults(handler=_edge)

    c = cmds.add_parser("cloud", help=SUITES["cloud"], description=SUITES["cloud"] + ".")
    _common(c)
    _registry_option(c)
    c.add_argument("--concurrency", type=positive_int, action="append", help="clients (repeatable)")
    c.add_argument(
        "--requests",
        type=positive_int,
        help="timed requests per level and path, split among the clients (default 48)",
    )
    c.add_argument(
        "--replicas",
        type=positive_int,
        help="grading replicas, one CPU each, of the bench's 2-CPU Ray (default 2; --quick 1)",
    )
    c.set_defaults(handler=_cloud)

    t = cmds.add_parser("traffic", help=SUITES["traffic"], description=SUITES["traffic"] + ".")
    _common(t)
    t.add_argument(
        "--sizes", type=positive_int, action="append", help="junction count (repeatable)"
    )
    t.set_defaults(handler=_traffic)

    from benchmarks import mutation

    mu = cmds.add_parser(
        "mutation",
        help=mutation.SUMMARY,
        description=mutation.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mutation.add_arguments(mu)
    mu.set_defaults(handler=mutation.run_from_args)
