"""The FHIR R4 DiagnosticReport of one final result, with one Observation per finding, as a
transaction Bundle. Built with fhir.resources' R4B models (R4B leaves DiagnosticReport and
Observation as in R4), so every resource is validated on construction."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation

from edge.clinic.reports.content import FinalResult
from edge.clinic.reports.sr import VERDICTS
from shared.errors import EdgewardError

SYSTEM = "urn:edgeward"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
EYES = {"R": ("362503005", "Entire right eye"), "L": ("362502000", "Entire left eye")}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _entry(resource: Any) -> dict[str, Any]:
    full = f"urn:uuid:{uuid.uuid4()}"
    kind = resource.get_resource_type()
    return {"fullUrl": full, "resource": resource, "request": {"method": "POST", "url": kind}}


def build_bundle(result: FinalResult) -> Bundle:
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    patient = {
        "identifier": {"system": f"{SYSTEM}:patient-id", "value": str(result.image.PatientID)}
    }
    device = f"{result.model_name} {result.model_version}"
    common: dict[str, Any] = {
        "status": "final",
        "subject": patient,
        "effectiveDateTime": now,
        "device": {"display": device},
    }
    if result.laterality in EYES:
        common["bodySite"] = _concept(SNOMED, *EYES[result.laterality])
    observations = [
        Observation(
            code=_concept(f"{SYSTEM}:finding", "dr-screening", "Diabetic retinopathy screening"),
            valueCodeableConcept=_concept(
                f"{SYSTEM}:verdict", result.verdict, VERDICTS.get(result.verdict, result.verdict)
            ),
            note=[{"text": r} for r in result.reasons] or None,
            **common,
        ),
        Observation(
            code=_concept(f"{SYSTEM}:finding", "confidence", "Confidence of the verdict"),
            valueQuantity={"value": round(result.confidence, 4), "unit": "1"},
            **common,
        ),
    ]
    if result.referable_probability is not None:
        observations.append(
            Observation(
                code=_concept(
                    f"{SYSTEM}:finding", "referable-probability", "Probability of referable DR"
                ),
                valueQuantity={"value": round(result.referable_probability, 4), "unit": "1"},
                **common,
            )
        )
    entries = [_entry(o) for o in observations]
    reviewed = result.source == "review"
    performers = [{"display": device}]
    if reviewed:  # the reviewer's decision replaces the automated report of the same scan
        performers.insert(0, {"display": f"{result.reviewer_role} {result.reviewer}"})
    report = DiagnosticReport(
        status="amended" if reviewed else "final",
        identifier=[{"system": f"{SYSTEM}:scan", "value": result.scan_id}],
        code=_concept(LOINC, "18748-4", "Diagnostic imaging study"),
        subject=patient,
        effectiveDateTime=now,
        issued=now,
        result=[{"reference": e["fullUrl"]} for e in entries],
        conclusion=result.plain_words,
        imagingStudy=None,
        performer=performers,
    )
    return Bundle(type="transaction", entry=[*entries, _entry(report)])


def bundle_json(result: FinalResult) -> bytes:
    return build_bundle(result).model_dump_json(exclude_none=True).encode()


class FhirSender:
    """Delivers one Bundle: POST to the FHIR base URL, or a file in the configured folder."""

    def __init__(self, endpoint: str | None, folder: Path | None, timeout_s: float) -> None:
        self.endpoint = endpoint
        self.folder = folder
        self.timeout_s = timeout_s

    def send(self, key: str, payload: bytes) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{key.replace(':', '_')}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(payload)
            tmp.replace(path)
            return
        assert self.endpoint is not None  # the config allows exactly one of the two
        request = urllib.request.Request(
            self.endpoint.rstrip("/"),
            data=payload,
            method="POST",
            headers={"Content-Type": "application/fhir+json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                json.loads(response.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise EdgewardError(
                f"FHIR endpoint {self.endpoint} did not take the report: {exc}"
            ) from exc
