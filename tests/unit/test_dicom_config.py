"""The DICOM/PACS/FHIR section of a clinic gateway's config: typos and nonsense are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import ClinicGatewayConfig
from shared.config.dicom import DicomScpSettings, FhirSettings, PacsSettings


def test_off_by_default_and_a_full_section_validates(tmp_path):
    assert ClinicGatewayConfig(site_id="c").dicom.scp is None
    config = ClinicGatewayConfig(
        site_id="c",
        dicom={
            "scp": {"ae_title": " EDGE ", "port": 0, "allowed_calling_ae_titles": ["CAM1"]},
            "pacs": {"protocol": "stow-rs", "stow_url": "http://127.0.0.1:8042/dicom-web"},
            "fhir": {"folder": str(tmp_path)},
        },
    )
    assert config.dicom.scp is not None and config.dicom.scp.ae_title == "EDGE"
    assert config.dicom.scp.host == "127.0.0.1"  # loopback unless told otherwise


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (DicomScpSettings, {"allowed_calling_ae_titles": ["CAM"], "aet": "X"}, "aet"),
        (DicomScpSettings, {"allowed_calling_ae_titles": []}, "at least 1"),
        (DicomScpSettings, {"allowed_calling_ae_titles": ["BAD\\AE"]}, "not valid"),
        (DicomScpSettings, {"allowed_calling_ae_titles": ["CAM"], "ae_title": "   "}, "spaces"),
        (
            DicomScpSettings,
            {"allowed_calling_ae_titles": ["CAM"], "ae_title": "A" * 17},
            "ae_title",
        ),
        (PacsSettings, {"protocol": "stow-rs"}, "stow_url"),
        (PacsSettings, {"protocol": "c-move"}, "protocol"),
        (FhirSettings, {}, "exactly one"),
        (FhirSettings, {"endpoint": "http://x/fhir", "folder": "/tmp"}, "exactly one"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(model, values, message):
    with pytest.raises(ValidationError) as err:
        model(**values)
    assert message in str(err.value)
