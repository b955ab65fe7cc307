"""DICOM networking of a clinic gateway: the C-STORE SCP cameras send to, the PACS that gets the
reports, and the FHIR endpoint (or folder) that gets the DiagnosticReport. Each part is off
until configured."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.config.base import StrictModel

# PS3.5 6.2: an AE title is 1-16 characters of the default repertoire, no backslash, and not
# only spaces; leading/trailing spaces are not significant.
AE_TITLE = r"^[ -\[\]-~]{1,16}$"


def _ae(value: str) -> str:
    if not value.strip():
        raise ValueError("an AE title cannot be only spaces")
    return value.strip()


class DicomScpSettings(StrictModel):
    """The C-STORE SCP the fundus cameras (or their review software) send to."""

    ae_title: str = Field("EDGEWARD", pattern=AE_TITLE, description="this gateway's AE title")
    host: str = Field("127.0.0.1", description="address the SCP binds to (loopback by default)")
    port: int = Field(11112, ge=0, le=65535, description="DICOM port; 0 = any free")
    allowed_calling_ae_titles: list[str] = Field(
        ...,
        min_length=1,
        description="calling AE titles of the cameras allowed to send; any other is refused",
    )
    max_associations: int = Field(8, ge=1, le=64, description="concurrent associations at most")

    _strip = field_validator("ae_title")(_ae)

    @field_validator("allowed_calling_ae_titles")
    @classmethod
    def _titles(cls, values: list[str]) -> list[str]:
        import re

        for v in values:
            if not re.match(AE_TITLE, v) or not v.strip():
                raise ValueError(
                    f"calling AE title {v!r} is not valid: 1-16 printable ASCII characters, "
                    "no backslash, not only spaces"
                )
        return [v.strip() for v in values]


class PacsSettings(StrictModel):
    """The site's PACS: where the Structured Report and the Encapsulated PDF are sent."""

    protocol: Literal["c-store", "stow-rs"] = Field(
        "c-store", description="DICOM C-STORE (host/port/ae_title) or DICOMweb STOW-RS (stow_url)"
    )
    host: str = Field("127.0.0.1", description="PACS host for C-STORE")
    port: int = Field(4242, ge=1, le=65535, description="PACS DICOM port for C-STORE")
    ae_title: str = Field("ORTHANC", pattern=AE_TITLE, description="the PACS's (called) AE title")
    calling_ae_title: str = Field(
        "EDGEWARD", pattern=AE_TITLE, description="the AE title this gateway calls with"
    )
    stow_url: str | None = Field(
        None, description="STOW-RS studies URL, e.g. http://pacs:8042/dicom-web/studies"
    )
    timeout_s: float = Field(30.0, gt=0, le=600, description="network and DIMSE timeout")
    backoff_initial_s: float = Field(1.0, gt=0, le=60, description="first retry delay")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="longest retry delay")

    _strip = field_validator("ae_title", "calling_ae_title")(_ae)

    @model_validator(mode="after")
    def _stow_needs_url(self) -> PacsSettings:
        if self.protocol == "stow-rs" and not self.stow_url:
            raise ValueError("pacs.protocol is stow-rs but pacs.stow_url is not set; give the URL")
        return self


class FhirSettings(StrictModel):
    """Where the FHIR R4 DiagnosticReport goes: an endpoint, or a folder (one JSON per result)."""

    endpoint: str | None = Field(
        None, description="FHIR base URL; the report is POSTed as a transaction Bundle"
    )
    folder: Path | None = Field(None, description="write each report's Bundle here instead")
    timeout_s: float = Field(30.0, gt=0, le=600, description="HTTP timeout of one POST")

    @model_validator(mode="after")
    def _one_target(self) -> FhirSettings:
        if (self.endpoint is None) == (self.folder is None):
            raise ValueError("fhir: set exactly one of endpoint or folder")
        return self


class DicomSettings(StrictModel):
    """Everything DICOM/FHIR of one gateway; each part None (off) unless configured."""

    scp: DicomScpSettings | None = Field(None, description="receive scans by C-STORE")
    pacs: PacsSettings | None = Field(None, description="send SR + PDF of each final result")
    fhir: FhirSettings | None = Field(None, description="send a FHIR DiagnosticReport")
    institution: str = Field(
        "edgeward clinic", max_length=64, description="institution named in the reports"
    )
