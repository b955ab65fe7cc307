"""The committed gRPC code is exactly what `make proto` generates from the .proto."""

from __future__ import annotations

from pathlib import Path

from shared.proto import edgeward_pb2
from shared.proto.generate import PROTO_DIR, REPO, generate


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    fresh = generate(tmp_path)
    assert {p.name for p in fresh} >= {
        "edgeward_pb2.py",
        "edgeward_pb2_grpc.py",
        "edgeward_pb2.pyi",
    }
    stale = [p.name for p in fresh if p.read_bytes() != (REPO / PROTO_DIR / p.name).read_bytes()]
    assert stale == [], f"run `make proto` and commit: {stale}"


def test_grade_request_round_trips() -> None:
    req = edgeward_pb2.GradeRequest(scan_id="s1", image=b"\x89PNG", site_id="north")
    req.edge.verdict = "refer"
    back = edgeward_pb2.GradeRequest.FromString(req.SerializeToString())
    assert back.scan_id == "s1" and back.edge.verdict == "refer" and back.image == b"\x89PNG"
