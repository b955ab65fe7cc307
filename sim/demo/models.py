"""The demo's models: built with our own training code the first time, found after."""

from __future__ import annotations

import subprocess

from shared.errors import EdgewardError
from shared.registry import Registry
from sim.demo.console import Console
from sim.demo.settings import DemoSettings
from sim.demo.supervisor import edgeward_cmd

MODELS = ("fundus-quality", "fundus-triage", "fundus-grader", "traffic-counter")


def ensure_models(settings: DemoSettings, say: Console) -> None:
    """Build the models with our own training code if the registry lacks a champion."""
    reg = Registry(settings.registry)
    missing = [m for m in MODELS if reg.champion(m) is None]
    if not missing:
        say(f"models: champions present in {settings.registry} ({', '.join(MODELS)})")
        return
    say(f"models: building {', '.join(missing)} (first run only; progress below)")
    cmd = edgeward_cmd("models", "build", "--if-missing", "--registry", str(settings.registry))
    if settings.quick_models:
        cmd.append("--quick")
    if subprocess.run(cmd, check=False).returncode != 0:
        raise EdgewardError("model build failed; see its output above")
