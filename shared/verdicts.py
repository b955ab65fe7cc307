"""The verdict names: the same words in the API, over MQTT and in reports."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from enum import Enum


class Verdict(str, Enum):
    RETAKE = "retake"  # the scan cannot be read well enough; the reasons say how to fix it
    REFER = "refer"  # signs of referable disease
    NO_IMMEDIATE_CONCERN = "no_immediate_concern"  # gradable and confidently healthy
    REVIEW = "review"  # a person must look: uncertain, out of distribution, tiers disagree
    REJECTED = "rejected"  # not a readable image at all

    def __str__(self) -> str:
        return self.value


# The gateway's codes for a judged scan travel with its upload (EdgeVerdict.codes). The cloud reads
# them by these rules, so the cloud grader never answers where the gateway's doubt forbids it.
QUALITY_NET = "quality_net"  # the quality net objects and no check names a fixable defect
OOD_PREFIX = "ood_"  # an out-of-distribution signal fired: ood_energy, ood_mahalanobis, ...
TRIAGE_PREFIX = "triage_"  # the triage net's own band: triage_review, triage_refer, ...
CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")  # what a code looks like: lower-case, e.g. ood_energy
MAX_CODES = 32


def answer_withheld(codes: Iterable[str]) -> bool:
    """The gateway gave no automatic answer (an unfamiliar photograph): a person decides."""
    return any(c == QUALITY_NET or c.startswith(OOD_PREFIX) for c in codes)


def readability_doubts(codes: Iterable[str]) -> tuple[str, ...]:
    """The gateway's doubts about whether the photograph can be read: every code but the triage
    net's band (a heavier grader may settle the triage net's uncertainty, not these)."""
    return tuple(dict.fromkeys(c for c in codes if not c.startswith(TRIAGE_PREFIX)))


def check_codes(codes: Sequence[str]) -> list[str]:
    """The codes as given, or ValueError saying which are not codes (or that there are too many):
    the one check for codes arriving from outside (an MQTT event, an HTTP header)."""
    bad = [c for c in codes if not CODE.fullmatch(c)]
    if bad:
        raise ValueError(f"codes {bad[:3]} are not codes (lower-case letters, digits, _)")
    if len(codes) > MAX_CODES:
        raise ValueError(f"{len(codes)} codes: at most {MAX_CODES}")
    return list(codes)


def wire_codes(codes: Iterable[str]) -> list[str]:
    """Codes as they may travel: one that does not look like a code is sent as `unknown_code`
    (still a doubt to the cloud's rule, never dropped), at most MAX_CODES of them."""
    out = [c if CODE.fullmatch(c) else "unknown_code" for c in codes]
    return list(dict.fromkeys(out))[:MAX_CODES]
