"""Two replica processes on one database (SQLite WAL file, real PostgreSQL): no review case is
lost or doubled, and a scan id both replicas receive at once gets exactly one case.

The grader answer is fixed and uncertain, so every scan must become a case: the count is the
rule under test. No timing is asserted (throughput is `python -m benchmarks.store_replicas`).
"""

from __future__ import annotations

import pytest

from benchmarks.store_replicas import run


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_replicas_on_one_database_lose_and_double_no_case(database: str) -> None:
    figures = run(database_kind=database, replicas=2, scans=40, threads=3, contended=12)
    assert figures["errors"] == 0, figures["error_samples"]
    assert figures["requests_sent"] == 40 + 2 * 12
    assert figures["cases_expected"] == 52
    assert figures["cases_found"] == 52 and figures["cases_lost"] == 0
    assert figures["cases_duplicated"] == 0
    assert figures["results_stored"] == 52
    # each contended id was created by exactly one replica and replayed to the other
    assert figures["created_reported"] == 52


def test_one_replica_is_not_the_question() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        run(replicas=1)
