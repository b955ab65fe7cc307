"""Load a role's YAML file into its validated model; report errors by key path, value and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, Union

import yaml
from pydantic import BaseModel, ValidationError

from shared.config.clinic import ClinicGatewayConfig
from shared.config.cloud import CloudConfig
from shared.config.traffic import TrafficGatewayConfig
from shared.errors import ConfigError

AnyConfig = Union[ClinicGatewayConfig, TrafficGatewayConfig, CloudConfig]  # noqa: UP007
ROLES: dict[str, type[BaseModel]] = {
    "clinic_gateway": ClinicGatewayConfig,
    "traffic_gateway": TrafficGatewayConfig,
    "cloud": CloudConfig,
}
M = TypeVar("M", bound=BaseModel)


def _line_of(node: yaml.Node | None, path: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `path`, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            match = [v for k, v in node.value if getattr(k, "value", None) == str(key)]
            if not match:
                return line
            node = match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _describe(path: Path, text: str, err: ValidationError) -> str:
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        root = None
    lines = [f"{path}: {err.error_count()} problem(s):"]
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        line = _line_of(root, loc)
        where = f"line {line}: " if line else ""
        value = "" if e["type"] == "missing" else f" (got {e['input']!r})"
        lines.append(f"  {where}{key}: {e['msg']}{value}")
    return "\n".join(lines)


def _read(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping of keys at the top, got {type(data).__name__}"
        )
    return text, data


def load_config(path: Path | str, model: type[M]) -> M:
    """Validate `path` as `model`; raises ConfigError naming every bad key."""
    path = Path(path)
    text, data = _read(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(path, text, exc)) from None


def load_any_config(path: Path | str) -> AnyConfig:
    """Validate a file whose `role` key says which model it is."""
    path = Path(path)
    _, data = _read(path)
    role = data.get("role")
    if role not in ROLES:
        raise ConfigError(f"{path}: role is {role!r}; expected one of {', '.join(sorted(ROLES))}")
    return load_config(path, ROLES[role])  # type: ignore[return-value]
