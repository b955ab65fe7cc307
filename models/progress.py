"""Progress bars for the model build: each parallel build process keeps its bar on its own line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

_state = {"line": 0}  # this process's bar line; 0 in the main process


def init_worker(lock: Any, next_line: Any) -> None:
    """ProcessPoolExecutor initializer: share tqdm's terminal lock and take the next bar line."""
    tqdm.set_lock(lock)
    with next_line.get_lock():
        _state["line"] = next_line.value
        next_line.value += 1


def bar(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm[Any]:
    """A tqdm bar on this process's line (parallel jobs otherwise overwrite one another's)."""
    return tqdm(iterable, position=_state["line"], **kwargs)
