"""A load generator for `bench mqtt`'s unpaced rounds: QoS 1 PUBLISH packets written in windows.

paho spends ~40 us of Python per QoS 1 publish; with the publishers on the same two cores as the
broker and the subscriber under test, that capped every subscriber near 12k messages/s, so the
unpaced round measured the load generator. This connection writes a window of pre-built MQTT v5
PUBLISH packets in one send and counts the PUBACKs (each must report success), as purpose-built
MQTT load generators do. It only publishes: plain TCP, no auth, no keepalive (the bench's broker).
Paced rounds keep paho: they measure a gateway's real client.
"""

from __future__ import annotations

import contextlib
import socket
import struct

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared.config.base import MqttSettings
from shared.errors import EdgewardError

CONNECT, CONNACK, PUBLISH_QOS1, PUBACK, DISCONNECT = 0x10, 0x20, 0x32, 0x40, 0xE0
TIMEOUT_S = 60.0
DEFAULT_RECEIVE_MAXIMUM = 65_535  # MQTT v5, when the CONNACK names none


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


class BurstPublisher:
    """One MQTT v5 connection that publishes QoS 1 messages a window at a time."""

    def __init__(self, settings: MqttSettings, client_id: str) -> None:
        if settings.tls or settings.username is not None:
            raise EdgewardError(
                "mqtt bench: the burst publisher speaks plain TCP without auth; "
                "run the bench on its own broker"
            )
        self._sock = socket.create_connection((settings.host, settings.port), TIMEOUT_S)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self._next_id = 0
        # protocol name, level 5, clean start, keepalive 0 (off: it idles between rounds), no props
        header = _string("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 0) + b"\x00"
        self._sock.sendall(_packet(CONNECT, header + _string(client_id)))
        kind, body = self._read()
        if kind != CONNACK or len(body) < 2 or body[1] != 0:
            raise EdgewardError(
                f"mqtt bench: broker refused burst client {client_id!r} "
                f"(packet 0x{kind:02x}, reason {body[1] if len(body) > 1 else '?'})"
            )
        props = Properties(PacketTypes.CONNACK)
        props.unpack(bytes(body[2:]))
        # never more unacknowledged QoS 1 messages than the broker will take
        self.window: int = getattr(props, "ReceiveMaximum", DEFAULT_RECEIVE_MAXIMUM)

    def _read(self) -> tuple[int, bytes]:
        """The next packet (first byte, body), reading the socket in bulk."""
        while True:
            length, shift, i = 0, 0, 1
            while i < len(self._buf) and i <= 4:
                length |= (self._buf[i] & 0x7F) << shift
                shift += 7
                if not self._buf[i] & 0x80:
                    end = i + 1 + length
                    if len(self._buf) >= end:
                        first, body = self._buf[0], bytes(self._buf[i + 1 : end])
                        del self._buf[:end]
                        return first, body
                    break
                i += 1
            chunk = self._sock.recv(65_536)
            if not chunk:
                raise EdgewardError("mqtt bench: the broker closed a burst publisher's connection")
            self._buf += chunk

    def send(self, topic: str, payloads: list[bytes]) -> None:
        """Write these QoS 1 PUBLISH packets at once (at most `window` of them)."""
        head = _string(topic)
        packets = []
        for payload in payloads:
            self._next_id = self._next_id % 65_535 + 1
            packets.append(
                _packet(PUBLISH_QOS1, head + struct.pack("!H", self._next_id) + b"\x00" + payload)
            )
        self._sock.sendall(b"".join(packets))

    def acked(self, count: int) -> None:
        """Wait for `count` PUBACKs; a failure reason code (>= 0x80) is an error."""
        for _ in range(count):
            kind, body = self._read()
            if kind != PUBACK:
                raise EdgewardError(f"mqtt bench: expected a PUBACK, got packet 0x{kind:02x}")
            if len(body) > 2 and body[2] >= 0x80:
                raise EdgewardError(f"mqtt bench: the broker refused a publish (0x{body[2]:02x})")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a connection the broker already dropped
            self._sock.sendall(_packet(DISCONNECT, b""))
        self._sock.close()


def burst(publishers: list[tuple[BurstPublisher, str, list[bytes]]]) -> None:
    """Every publisher sends its payloads on its topic; windows interleave across connections,
    so the broker always has every connection's window in hand. Returns once all are acked."""
    offset, longest = 0, max((len(p) for _, _, p in publishers), default=0)
    window = min((pub.window for pub, _, _ in publishers), default=1)
    while offset < longest:
        sent = []
        for pub, topic, payloads in publishers:
            part = payloads[offset : offset + window]
            if part:
                pub.send(topic, part)
            sent.append(len(part))
        for (pub, _, _), n in zip(publishers, sent, strict=True):
            pub.acked(n)
        offset += window
