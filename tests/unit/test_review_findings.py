"""The edge's quality findings and OOD scores travel with the upload to the review desk, and a
desk decision comes back on the scan's result (GetResult) for the gateway to report."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from cloud.grader import GradeJob
from cloud.grading import Grading
from cloud.review_desk import mount_desk
from cloud.review_desk.samples import fundus_png
from cloud.service import GradeInput, GradingService, InvalidRequestError, check_edge_codes
from cloud.store import CloudStore, EdgeFindings
from edge.clinic.upload import split_measures
from shared import decision
from shared.messages import ScanVerdictEvent
from shared.proto import edgeward_pb2 as pb
from shared.verdicts import Verdict, wire_codes
from tests.unit.test_review_desk import PASSWORD, decide, login

MEASURES = {
    "blur_laplacian_var": 41.5,
    "quality_net_p_reject": 0.125,
    "quality_energy": -3.25,
    "triage_mahalanobis": 17.5,
}


def _upload(scan_id: str, with_findings: bool) -> pb.GradeRequest:
    """A GradeRequest as the gateway's upload worker builds it, through the wire."""
    quality, ood = split_measures(MEASURES)
    edge = pb.EdgeVerdict(verdict="review", referable_probability=0.55)
    if with_findings:
        edge.reasons.append("dim image: mean brightness 31 is below 40")
        edge.codes.extend(["dim", "ood_mahalanobis"])
        edge.quality_scores.update(quality)
        edge.ood_scores.update(ood)
        edge.has_referable_probability = True
    request = pb.GradeRequest(
        scan_id=scan_id,
        image=fundus_png(3),
        content_type="image/png",
        site_id="clinic-a",
        edge=edge,
    )
    return pb.GradeRequest.FromString(request.SerializeToString())


def _grade(store: CloudStore, request: pb.GradeRequest) -> pb.GradeResult:
    async def uncertain(job: GradeJob) -> Grading:
        return Grading([0.2, 0.3, 0.3, 0.1, 0.1], 0.5, 1, "fundus-dr:7", {"referable": 0.5})

    service = GradingService(store, uncertain, (0.3, 0.7), "fundus-dr")
    result, _ = asyncio.run(service.grade(_input(request), "grpc"))
    assert result.needs_review
    return result


def _input(request: pb.GradeRequest) -> GradeInput:
    """What the ingress hands the grading service for a gRPC upload."""
    return GradeInput(
        scan_id=request.scan_id,
        image=request.image,
        content_type=request.content_type,
        site_id=request.site_id,
        edge_verdict=request.edge.verdict,
        edge_findings=EdgeFindings.from_proto(request.edge),
    )


def _desk(store: CloudStore) -> FastAPI:
    app = FastAPI()
    app.state.desk = mount_desk(app, store)
    app.state.desk.accounts.add("ann", "reviewer", PASSWORD)
    return app


def test_measures_split_into_quality_findings_and_ood_scores() -> None:
    quality, ood = split_measures(MEASURES)
    assert quality == {"blur_laplacian_var": 41.5, "quality_net_p_reject": 0.125}
    assert ood == {"quality_energy": -3.25, "triage_mahalanobis": 17.5}


def test_case_uploaded_with_findings_shows_them_on_the_case_page(store: CloudStore) -> None:
    _grade(store, _upload("scan-f1", with_findings=True))
    (case,) = store.cases()
    assert case.edge_findings is not None
    assert case.edge_findings.ood == {"quality_energy": -3.25, "triage_mahalanobis": 17.5}
    page = login(_desk(store), "ann").get(f"/desk/cases/{case.case_id}").text
    quality = page.split("<h2>Quality findings</h2>")[1].split("<h2>")[0]
    ood = page.split("<h2>Out-of-distribution scores</h2>")[1].split("<h2>")[0]
    assert "not recorded" not in quality and "not recorded" not in ood
    assert (
        "<code>dim</code>" in quality and "quality_net_p_reject" in quality and "0.125" in quality
    )
    assert "triage_mahalanobis" in ood and "17.5" in ood and "-3.25" in ood
    assert "dim image: mean brightness 31 is below 40" in page
    assert "0.550" in page  # the edge's P(referable)


def test_a_confident_all_clear_on_a_photograph_the_gateway_doubts_goes_to_the_desk(
    store: CloudStore,
) -> None:
    async def confident(job: GradeJob) -> Grading:
        return Grading([0.97, 0.02, 0.01, 0.0, 0.0], 0.01, 0, "fundus-dr:7", {"referable": 0.5})

    request = _upload("scan-f4", with_findings=True)
    del request.edge.codes[:]
    request.edge.codes.extend(["triage_no_immediate_concern", "quality_doubt"])
    service = GradingService(store, confident, (0.3, 0.7), "fundus-dr")
    result, _ = asyncio.run(service.grade(_input(request), "grpc"))
    assert result.verdict == "review" and result.needs_review
    (case,) = store.cases()
    assert case.cloud_verdict == "no_immediate_concern"
    assert "can be read (quality_doubt)" in case.reason
    page = login(_desk(store), "ann").get(f"/desk/cases/{case.case_id}").text
    assert "can be read (quality_doubt)" in page


async def _confident(job: GradeJob) -> Grading:
    return Grading([0.97, 0.02, 0.01, 0.0, 0.0], 0.01, 0, "fundus-dr:7", {"referable": 0.5})


def _http_input(scan_id: str, codes_header: str) -> GradeInput:
    """What the ingress hands the grading service for an HTTP upload with these headers."""
    return GradeInput(
        scan_id=scan_id,
        image=fundus_png(3),
        content_type="image/png",
        edge_verdict="review",
        edge_findings=check_edge_codes(codes_header, scan_id),
    )


def test_an_http_upload_carries_the_gateways_doubt_in_x_edge_codes(store: CloudStore) -> None:
    service = GradingService(store, _confident, (0.3, 0.7), "fundus-dr")
    doubted, _ = asyncio.run(
        service.grade(_http_input("scan-h1", "triage_review, quality_doubt"), "http")
    )
    assert doubted.verdict == "review" and "can be read (quality_doubt)" in doubted.review_reason
    # the triage net's own band is the grader's to settle, over HTTP as over gRPC
    settled, _ = asyncio.run(service.grade(_http_input("scan-h2", "triage_review"), "http"))
    assert settled.verdict == "no_immediate_concern" and not settled.needs_review


def test_the_gateways_verdict_event_brings_its_doubt_to_an_upload_without_codes(
    store: CloudStore,
) -> None:
    event = ScanVerdictEvent(
        sender="gw-1",
        scan_id="scan-h3",
        site_id="clinic-a",
        verdict=Verdict.REVIEW,
        confidence=0.5,
        codes=wire_codes(["quality_net", "Not A Code"]),
    )
    assert event.codes == ["quality_net", "unknown_code"]  # never dropped: still a doubt
    store.record_edge_verdict(
        "scan-h3",
        site_id="clinic-a",
        message_id=event.message_id,
        verdict="review",
        confidence=0.5,
        event=event.model_dump_json(),
    )
    service = GradingService(store, _confident, (0.3, 0.7), "fundus-dr")
    result, _ = asyncio.run(service.grade(_http_input("scan-h3", ""), "http"))
    assert result.verdict == "review"
    assert "unfamiliar (quality_net, unknown_code)" in result.review_reason


@pytest.mark.parametrize("header", ["Quality-Doubt", "dim;rm -rf", ",".join(["dim"] * 33)])
def test_codes_that_are_not_codes_get_a_clear_error_naming_the_header(header: str) -> None:
    with pytest.raises(InvalidRequestError, match="X-Edge-Codes must be up to 32"):
        check_edge_codes(header, "scan-h4")
    with pytest.raises(ValidationError, match="not codes"):
        ScanVerdictEvent(
            sender="gw-1",
            scan_id="s",
            site_id="a",
            verdict=Verdict.REVIEW,
            confidence=0.5,
            codes=[header],
        )


def test_case_from_an_older_gateway_says_not_recorded(store: CloudStore) -> None:
    _grade(store, _upload("scan-f2", with_findings=False))
    (case,) = store.cases()
    assert case.edge_findings is None
    page = login(_desk(store), "ann").get(f"/desk/cases/{case.case_id}").text
    for section in ("Quality findings", "Out-of-distribution scores"):
        assert f"<h2>{section}</h2>\n  <p>not recorded</p>" in page


def test_desk_decision_comes_back_on_the_scans_result(store: CloudStore) -> None:
    _grade(store, _upload("scan-f3", with_findings=True))
    service = GradingService(store, None, (0.3, 0.7), "fundus-dr")  # type: ignore[arg-type]
    assert not service.result("scan-f3").HasField("review")
    (case,) = store.cases()
    decide(login(_desk(store), "ann"), case, "refer", note="microaneurysms inferior arcade")
    review = service.result("scan-f3").review
    assert (review.outcome, review.label, review.reviewer, review.role) == (
        "refer",
        "grade2",
        "ann",
        "reviewer",
    )
    assert review.model_version == "fundus-dr:7" and review.case_id == case.case_id
    assert review.note == "microaneurysms inferior arcade" and review.decided_at > 0


def test_qa_sample_sends_a_stable_share_of_confident_results_to_review() -> None:
    ids = [f"s-{i:04d}" for i in range(2000)]
    picked = [i for i in ids if decision.sampled(i, 0.25)]
    assert 400 < len(picked) < 600  # a quarter, give or take the hash
    assert picked == [i for i in ids if decision.sampled(i, 0.25)]  # the same scans every time
    assert not any(decision.sampled(i, 0.0) for i in ids) and all(
        decision.sampled(i, 1.0) for i in ids
    )
    confident = decision.decide(0.99, {"referable": 0.5}, (0.2, 0.8), "refer", qa_sample=True)
    assert confident.needs_review and confident.review_reason.startswith("quality-assurance")
    assert confident.grade_verdict.value == "refer"
    assert not decision.decide(0.99, {"referable": 0.5}, (0.2, 0.8), "refer").needs_review
