"""`edgeward monitor`: drift checks and reports on a prediction log, retraining, canary status."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from shared.config import MqttSettings
from shared.config.flywheel import FlywheelConfig
from shared.config.loader import load_config
from shared.errors import EdgewardError
from shared.monitoring.prediction_log import PredictionLog, PredictionStore
from shared.registry import Registry


def _config(path: Path | None) -> FlywheelConfig:
    return load_config(path, FlywheelConfig) if path else FlywheelConfig()


def _log(args: argparse.Namespace) -> PredictionStore:
    from cloud.flywheel.grade_log_db import DatabasePredictionLog  # SQLAlchemy: only when asked
    from cloud.store import DATABASE_URL_ENV

    key = os.environ.get("EDGEWARD_SITE_KEY", "").encode()
    if args.database:
        url = os.environ.get(DATABASE_URL_ENV, "")
        if not url:
            raise EdgewardError(
                f"--database reads the grade log from the cloud's database, but {DATABASE_URL_ENV}"
                " is not set; export the URL the cloud runs with"
            )
        return DatabasePredictionLog(url, key)
    if args.log is None:
        raise EdgewardError(
            "say which prediction log: --log FILE (the SQLite file a gateway or a one-node cloud "
            f"writes) or --database (the cloud's database, from {DATABASE_URL_ENV})"
        )
    if not args.log.exists():
        raise EdgewardError(
            f"prediction log {args.log} does not exist; give the SQLite file the gateway or the "
            "cloud writes (or make one with `python -m sim.flywheel`)"
        )
    return PredictionLog(args.log, key)


def _report(args: argparse.Namespace) -> int:
    from cloud.monitor.report import render_report

    log = _log(args)
    report = render_report(
        log, Registry(args.registry), args.model, args.out,
        config=_config(args.config), window=args.window,
    )  # fmt: skip
    check = report.check
    print(f"{args.model}: {'DRIFT' if check.alarm else 'no drift'} over the last {check.n}")
    for r in check.results:
        print(f"  {'DRIFT' if r.drifted else 'ok   '} {r.detail}")
    print(f"  concept: {check.concept.detail}")
    for note in check.notes:
        print(f"  note: {note}")
    print(f"report: {report.html}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from cloud.monitor.alerts import alert_for, publish_alert
    from cloud.monitor.metrics import DriftMetrics
    from shared.monitoring.check import build_reference, check_drift

    cfg = _config(args.config)
    log = _log(args)
    rows = log.rows(args.model)
    registry = Registry(args.registry)
    manifest = registry.champion(args.model)
    if manifest is None:
        raise EdgewardError(f"model {args.model!r} has no champion in registry {registry.root}")
    window = args.window or cfg.window
    ref = build_reference(manifest.extra, rows, baseline=window)
    check = check_drift(args.model, rows, ref, thresholds=cfg.drift, window=window)
    metrics = DriftMetrics()
    metrics.update(check)
    if args.prom:
        metrics.write(args.prom)
    for r in check.results:
        print(f"{'DRIFT' if r.drifted else 'ok   '} {r.detail}")
    print(f"concept: {check.concept.detail}")
    alert = alert_for(check, manifest.model_id, args.scope)
    if alert is not None and args.mqtt_port:
        publish_alert(MqttSettings(host=args.mqtt_host, port=args.mqtt_port), alert)
        print(f"alert published: {len(alert.findings)} finding(s)")
    return 1 if check.alarm and args.fail_on_drift else 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "monitor",
        help="drift, fairness and canary reports",
        description=(
            "Watch models in service: drift of inputs and confidence against the reference kept "
            "with the model, concept drift from reviewer labels, HTML reports with charts."
        ),
    )
    msub = p.add_subparsers(dest="monitor_command", metavar="ACTION")

    def usage(_args: argparse.Namespace) -> int:
        p.print_help()
        return 0

    p.set_defaults(handler=usage)

    def common(q: argparse.ArgumentParser) -> None:
        where = q.add_mutually_exclusive_group()
        where.add_argument("--log", type=Path, help="prediction log: the SQLite file")
        where.add_argument(
            "--database",
            action="store_true",
            help="the grade log in the cloud's database, the one EDGEWARD_DATABASE_URL names "
            "(a cloud beyond one node)",
        )
        q.add_argument("--model", required=True, help="registry name, e.g. fundus-triage")
        q.add_argument("--registry", type=Path, default=Path("registry"), help="registry root")
        q.add_argument("--config", type=Path, help="flywheel config YAML (thresholds, window)")
        q.add_argument("--window", type=int, help="predictions per window (default: config)")

    r = msub.add_parser(
        "report",
        help="render an HTML drift report with charts",
        description="Reference vs current histograms per feature, drift over time, accuracy.",
    )
    common(r)
    r.add_argument("--out", type=Path, required=True, help="directory for index.html and PNGs")
    r.set_defaults(handler=_report)

    c = msub.add_parser(
        "check",
        help="judge the last window; Prometheus metrics and an MQTT alert on drift",
        description="Print drift per feature; publish a DriftAlert and write metrics if asked.",
    )
    common(c)
    c.add_argument("--prom", type=Path, help="write Prometheus metrics to this textfile")
    c.add_argument("--mqtt-host", default="127.0.0.1", help="broker for the alert")
    c.add_argument("--mqtt-port", type=int, default=0, help="broker port; 0 = no alert")
    c.add_argument("--scope", default="cloud", help="who judges: 'cloud' or a gateway id")
    c.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is found")
    c.set_defaults(handler=_check)
