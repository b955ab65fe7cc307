"""Base of every config model: unknown keys are errors, every field documented and bounded."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ConfigError


class StrictModel(BaseModel):
    """A config section: forbids unknown keys so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class MqttSettings(StrictModel):
    """How a process reaches the broker. The password comes from the environment only."""

    host: str = Field("127.0.0.1", description="broker host name or address")
    port: int = Field(1883, ge=1, le=65535, description="broker TCP port")
    username: str | None = Field(None, description="user name; None connects anonymously")
    password_env: str = Field(
        "EDGEWARD_MQTT_PASSWORD",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="name of the environment variable holding the password",
    )
    keepalive_s: int = Field(30, ge=5, le=600, description="MQTT keepalive interval")
    tls: bool = Field(False, description="connect with TLS (port 8883 on most brokers)")
    ca_file: Path | None = Field(
        None, description="CA certificate that signed the broker's (TLS); None: the system CAs"
    )
    cert_file: Path | None = Field(
        None, description="this client's certificate for mutual TLS; its CN is its identity"
    )
    key_file: Path | None = Field(None, description="the private key of cert_file")

    def password(self) -> str | None:
        """The password from the environment; an error if a user is set but no password."""
        if self.username is None:
            return None
        value = os.environ.get(self.password_env)
        if not value:
            raise ConfigError(
                f"mqtt.username is {self.username!r} but environment variable "
                f"{self.password_env} is not set; export the broker password there"
            )
        return value


def secret_from_env(name: str, what: str) -> bytes:
    """A secret from the environment, with an error that says which variable to set."""
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set; export it first")
    return value.encode()
