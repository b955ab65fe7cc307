"""The verdict names: the same words in the API, over MQTT and in reports."""

from __future__ import annotations

from enum import Enum


class Verdict(str, Enum):
    RETAKE = "retake"  # the scan cannot be read well enough; the reasons say how to fix it
    REFER = "refer"  # signs of referable disease
    NO_IMMEDIATE_CONCERN = "no_immediate_concern"  # gradable and confidently healthy
    REVIEW = "review"  # a person must look: uncertain, out of distribution, tiers disagree
    REJECTED = "rejected"  # not a readable image at all

    def __str__(self) -> str:
        return self.value
