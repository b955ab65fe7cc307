"""Errors meant for a person: they name the thing, the value and what to do."""

from __future__ import annotations


class EdgewardError(Exception):
    """A problem the user can act on; the CLI prints it without a traceback."""


class ConfigError(EdgewardError):
    """A configuration file is missing, malformed or has invalid values."""


class SchemaError(EdgewardError):
    """A wire payload does not match its schema."""


class ModelRefusedError(EdgewardError):
    """A model artifact failed verification and must not be served."""
