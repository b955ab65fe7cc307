"""`edgeward cloud users add/list`: accounts the desk then accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cloud.review_desk.accounts import Accounts
from cloud.review_desk.users_cli import PASSWORD_ENV
from cloud.store import CloudStore
from shared.cli import main


def test_users_add_with_env_password_creates_a_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    monkeypatch.setenv(PASSWORD_ENV, "a long enough secret")
    assert main(["cloud", "users", "add", "dana", "--role", "admin", "--config", str(config)]) == 0
    assert main(["cloud", "users", "list", "--config", str(config)]) == 0
    assert "dana\tadmin" in capsys.readouterr().out
    store = CloudStore(tmp_path / "data")
    accounts = Accounts(store.engine)
    user = accounts.authenticate("dana", "a long enough secret")
    assert user is not None and user.role == "admin"
    assert accounts.authenticate("dana", "wrong") is None
    store.close()


def test_users_add_refuses_a_short_password_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "cloud.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data")}))
    monkeypatch.setenv(PASSWORD_ENV, "short")
    assert main(["cloud", "users", "add", "eve", "--config", str(config)]) != 0
    store = CloudStore(tmp_path / "data")
    assert Accounts(store.engine).users() == []
    store.close()
