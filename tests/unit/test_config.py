"""Role configs: defaults, bounds, unknown keys and secrets, reported by line, key and value."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.cli import main
from shared.config import (
    ClinicGatewayConfig,
    CloudConfig,
    MqttSettings,
    TrafficGatewayConfig,
    load_any_config,
    load_config,
)
from shared.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["clinic-gateway.yaml", "traffic-gateway.yaml", "cloud.yaml"])
def test_example_configs_in_deploy_are_valid(name: str) -> None:
    cfg = load_any_config(REPO / "deploy" / "config" / name)
    assert cfg.role in {"clinic_gateway", "traffic_gateway", "cloud"}


def test_every_field_has_a_description() -> None:
    for model in (ClinicGatewayConfig, TrafficGatewayConfig, CloudConfig, MqttSettings):
        schema = model.model_json_schema()
        for name, prop in schema["properties"].items():
            has_doc = "description" in prop or "$ref" in prop or "allOf" in prop
            assert has_doc, f"{model.__name__}.{name} has no description"


def test_unknown_key_is_named_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "role: clinic_gateway\nsite_id: a\nhttp:\n  prot: 80\n")
    with pytest.raises(ConfigError) as err:
        load_any_config(path)
    assert "line 4: http.prot: Extra inputs are not permitted (got 80)" in str(err.value)


def test_out_of_bounds_value_is_named_with_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "role: traffic_gateway\njunction_id: J1\nsafety:\n  yellow_s: 9\n")
    with pytest.raises(ConfigError) as err:
        load_any_config(path)
    assert "line 4: safety.yellow_s: Input should be less than or equal to 6 (got 9)" in str(
        err.value
    )


def test_cross_field_rule_quotes_both_values(tmp_path: Path) -> None:
    text = "role: cloud\ngrader:\n  min_replicas: 3\n  max_replicas: 2\n"
    with pytest.raises(ConfigError, match=r"max_replicas \(2\) must be >= min_replicas \(3\)"):
        load_any_config(_write(tmp_path, text))


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="site_id: Field required"):
        load_any_config(_write(tmp_path, "role: clinic_gateway\n"))


def test_unknown_role_lists_the_roles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="role is 'toaster'; expected one of clinic_gateway"):
        load_any_config(_write(tmp_path, "role: toaster\n"))


def test_malformed_yaml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(_write(tmp_path, "role: [cloud\n"), CloudConfig)


def test_password_comes_from_the_environment_only(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = MqttSettings(username="gw", password_env="TEST_EDGEWARD_PW")
    monkeypatch.delenv("TEST_EDGEWARD_PW", raising=False)
    with pytest.raises(ConfigError, match="TEST_EDGEWARD_PW is not set"):
        settings.password()
    monkeypatch.setenv("TEST_EDGEWARD_PW", "hunter2")
    assert settings.password() == "hunter2"
    assert "password" not in MqttSettings.model_fields


def test_config_check_cli_reports_each_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(tmp_path, "role: cloud\nhttp_port: 70000\n")
    good = REPO / "deploy" / "config" / "cloud.yaml"
    assert main(["config", "check", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{good}: ok (cloud)" in out
    assert "line 2: http_port: Input should be less than or equal to 65535 (got 70000)" in out


def test_cli_error_is_printed_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(tmp_path / "absent.yaml")]) == 1
    out = capsys.readouterr().out
    assert "cannot read config file" in out
    assert "Traceback" not in out
