"""Keyed pseudonyms: no patient id and no clinic scan id leaves the gateway in the clear."""

from __future__ import annotations

import hashlib
import hmac

from shared.config.base import secret_from_env
from shared.errors import ConfigError

MIN_KEY_BYTES = 32  # 256 bits: a brute force over low-entropy MRNs needs the key itself


class Pseudonymiser:
    """HMAC-SHA256 under the site secret: stable per site, not reversible without the key.

    Each site has its own key and the cloud never holds one: it sees only pseudonyms, so it
    cannot hash candidate MRNs to find a patient, and one site's key reveals no other site's.
    """

    def __init__(self, key: bytes, variable: str = "the site key") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigError(
                f"{variable} is {len(key)} bytes; the site pseudonymisation key must be at least "
                f"{MIN_KEY_BYTES} random bytes, one per site (make one with `python -c 'import "
                "secrets; print(secrets.token_hex(32))'`). Changing it changes every pseudonym"
            )
        self._key = key

    @classmethod
    def from_env(cls, variable: str) -> Pseudonymiser:
        return cls(secret_from_env(variable, "pseudonymising patient ids before upload"), variable)

    def _digest(self, kind: str, value: str) -> str:
        # The kind prefix keeps a patient id and a scan id that happen to be equal apart.
        return hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()

    def patient(self, patient_id: str) -> str:
        return "p-" + self._digest("patient", patient_id)

    def scan(self, scan_id: str) -> str:
        """The id the cloud and the broker know this scan by (34 chars, fits every id field)."""
        return "s-" + self._digest("scan", scan_id)[:32]

    def redact(self, text: str, *secrets: str | None) -> str:
        """`text` with every raw identifier in `secrets` replaced by a placeholder."""
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, "[redacted]")
        return text
