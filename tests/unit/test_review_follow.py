"""The gateway follows its desk cases to the reviewer's decision, asking less often the longer a
case waits: a decision is learned within about a tenth of its wait (2 s to 5 min)."""

from __future__ import annotations

from pathlib import Path

from edge.clinic.database import Database
from edge.clinic.review_follow import ReviewFollower, wait_for_review
from shared.proto import edgeward_pb2 as pb

T0 = 1_000_000.0


def _follower(tmp_path: Path, decided: set[str]) -> tuple[ReviewFollower, list[str]]:
    asked: list[str] = []

    def fetch(cloud_id: str) -> pb.GradeResult:
        asked.append(cloud_id)
        result = pb.GradeResult(scan_id=cloud_id, verdict="review", needs_review=True)
        if cloud_id in decided:
            result.review.outcome, result.review.reviewer = "refer", "grader-1"
        return result

    return ReviewFollower(Database(tmp_path / "gateway.db"), fetch), asked


def _wait(follower: ReviewFollower, scan_id: str, since: float) -> None:
    with follower.db.transaction() as conn:
        wait_for_review(conn, scan_id, f"cloud-{scan_id}")
        conn.execute(
            "UPDATE review_decisions SET updated_at = ? WHERE scan_id = ?", (since, scan_id)
        )


def test_a_case_is_asked_again_after_a_tenth_of_its_wait(tmp_path: Path) -> None:
    follower, asked = _follower(tmp_path, decided=set())
    _wait(follower, "fresh", since=T0)  # waiting 20 s at T0 + 20: asked every 2 s
    _wait(follower, "old", since=T0 - 3_000)  # waiting ~50 min: asked every 5 min
    assert follower.poll_once(now=T0 + 20) == 0 and sorted(asked) == ["cloud-fresh", "cloud-old"]
    asked.clear()
    follower.poll_once(now=T0 + 21)  # nothing is due a second later
    assert asked == []
    follower.poll_once(now=T0 + 22.5)  # the fresh case is due again, the old one is not
    assert asked == ["cloud-fresh"]
    asked.clear()
    follower.poll_once(now=T0 + 20 + 299)
    assert "cloud-old" not in asked
    follower.poll_once(now=T0 + 20 + 301)
    assert "cloud-old" in asked


def test_a_decision_is_stored_once_and_the_case_is_no_longer_asked(tmp_path: Path) -> None:
    follower, asked = _follower(tmp_path, decided={"cloud-a"})
    _wait(follower, "a", since=T0)
    assert follower.poll_once(now=T0 + 5) == 1
    (row,) = follower.db.read("SELECT state, decision FROM review_decisions WHERE scan_id = 'a'")
    assert row["state"] == "decided"
    assert pb.GradeResult.FromString(row["decision"]).review.reviewer == "grader-1"
    asked.clear()
    assert follower.poll_once(now=T0 + 600) == 0 and asked == []
