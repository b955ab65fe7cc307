"""The YAML configs the demo writes for its tiers: the cloud tier's and each clinic gateway's.

The same files an operator writes for a deployment; each process the demo starts reads its own
from `<out>/config/`, so a person can start any part again by hand with the file it used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shared.broker import CLOUD_IDENTITY, MosquittoBroker
from sim.demo import dicom as demo_dicom
from sim.demo.trust import Uplink
from sim.pacs import Orthanc

REVIEW_SAMPLE = 0.34  # a third of the cloud's confident results also go to the review desk


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def cloud_config(
    out: Path,
    *,
    data_dir: Path,
    registry: Path,
    http_port: int,
    grpc_port: int,
    broker: MosquittoBroker,
) -> Path:
    return write_yaml(
        out / "config" / "cloud.yaml",
        {
            "role": "cloud",
            "data_dir": str(data_dir),
            "registry_dir": str(registry),
            "http_port": http_port,
            "grpc_port": grpc_port,
            # The models are sure of most synthetic scans: a QA sample gives the desk cases.
            "review_sample": REVIEW_SAMPLE,
            "mqtt": broker.client_settings(CLOUD_IDENTITY).model_dump(mode="json"),
        },
    )


def set_cloud_ports(config: Path, http_port: int, grpc_port: int) -> None:
    """Point an existing cloud config at new ports, everything else as it was."""
    ports = {"http_port": http_port, "grpc_port": grpc_port}
    write_yaml(config, {**yaml.safe_load(config.read_text()), **ports})


def clinic_config(
    out: Path,
    i: int,
    *,
    registry: Path,
    port: int,
    broker: MosquittoBroker,
    uplink: Uplink,
    orthanc: Orthanc | None,
    dicom_port: int | None,
) -> Path:
    """Clinic `i`'s gateway; with the demo's PACS and a C-STORE port, it takes DICOM too."""
    name = f"clinic-{i + 1}"
    extra: dict[str, Any] = {}
    if orthanc is not None and dicom_port is not None:
        # This clinic's camera sends by C-STORE; its results go to the demo's PACS.
        extra["dicom"] = {
            "scp": demo_dicom.scp_settings(dicom_port),
            "pacs": demo_dicom.pacs_settings(orthanc),
            "fhir": {"folder": str(out / name / "fhir")},
            "institution": f"edgeward demo clinic {i + 1}",
        }
    return write_yaml(
        out / "config" / f"{name}.yaml",
        {
            "role": "clinic_gateway",
            "site_id": name,
            "gateway_id": f"gw-{name}",
            "data_dir": str(out / name),
            "registry_dir": str(registry),
            "backend": "onnx-cpu",
            "http": {"host": "127.0.0.1", "port": port},
            "grpc_port": 0,
            "cloud": {
                **uplink.clinic_settings(name),
                "backoff_initial_s": 1.0,
                "backoff_max_s": 5.0,
            },
            "mqtt": broker.client_settings(f"gw-{name}").model_dump(mode="json"),
            **extra,
        },
    )
