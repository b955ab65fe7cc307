"""A paho-mqtt client set up the edgeward way: MQTT 5, auth from env, Last Will, QoS 1."""

from __future__ import annotations

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared.config.base import MqttSettings
from shared.errors import ConfigError
from shared.messages.base import Message

QOS = 1  # at-least-once everywhere that matters; receivers dedupe on message_id


def make_client(
    settings: MqttSettings,
    client_id: str,
    will: tuple[str, Message] | None = None,
) -> paho.Client:
    """A client not yet connected; `connect()` starts it."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5,
    )
    password = settings.password()
    if settings.username is not None:
        client.username_pw_set(settings.username, password)
    if settings.tls:
        if (settings.cert_file is None) != (settings.key_file is None):
            raise ConfigError(
                "mqtt.cert_file and mqtt.key_file go together: give both for mutual TLS, or neither"
            )
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
        )
    if will is not None:
        topic, message = will
        client.will_set(topic, message.encode(), qos=QOS, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client


def _session_props(persistent: bool) -> Properties:
    props = Properties(PacketTypes.CONNECT)
    # One day of session expiry: a gateway offline for hours still gets its queued messages.
    props.SessionExpiryInterval = 86_400 if persistent else 0
    return props


def connect(client: paho.Client, settings: MqttSettings, persistent: bool = True) -> None:
    """Connect in the background; paho reconnects by itself after a broker outage.

    `persistent` keeps the session (subscriptions and queued QoS 1 messages) on the broker
    across disconnects, so nothing sent to this client while it was away is lost.
    """
    client.connect_async(
        settings.host,
        settings.port,
        keepalive=settings.keepalive_s,
        clean_start=not persistent,
        properties=_session_props(persistent),
    )
    client.loop_start()
