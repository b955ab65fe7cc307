"""The one durable outbox both gateways use: MQTT messages on disk until the broker's PUBACK."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from edge.outbox import TopicOutbox


def test_topic_messages_wait_in_order_until_acknowledged(tmp_path: Path) -> None:
    box = TopicOutbox.open(tmp_path / "j1.outbox.sqlite")
    first = box.put("edgeward/traffic/J1/counts", b"one", retain=False)
    second = box.put("edgeward/gateway/traffic/J1/status", b"two", retain=True)
    assert first < second and box.depth() == 2
    assert box.pending() == [
        (first, "edgeward/traffic/J1/counts", b"one", False),
        (second, "edgeward/gateway/traffic/J1/status", b"two", True),
    ]
    assert [m[0] for m in box.pending(after=first)] == [second]
    box.remove(first)
    assert [m[2] for m in box.pending()] == [b"two"] and box.depth() == 1


def test_unacknowledged_messages_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "j1.outbox.sqlite"
    box = TopicOutbox.open(path)
    box.put("t/a", b"kept", retain=False)
    box.close()
    again = TopicOutbox.open(path)
    assert [(m[1], m[2]) for m in again.pending()] == [("t/a", b"kept")]
    again.close()


def test_a_junction_outbox_from_before_the_shared_one_keeps_its_messages(tmp_path: Path) -> None:
    path = tmp_path / "old.outbox.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, retain INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO outbox (topic, payload, retain) VALUES (?, ?, ?)",
            [("t/counts", b"c1", 0), ("t/status", b"s1", 1), ("t/counts", b"c2", 0)],
        )
    box = TopicOutbox.open(path)
    assert [(m[1], m[2], m[3]) for m in box.pending()] == [
        ("t/counts", b"c1", False),
        ("t/status", b"s1", True),
        ("t/counts", b"c2", False),
    ]
    box.put("t/counts", b"c3", retain=False)
    assert box.depth() == 4
    box.close()
