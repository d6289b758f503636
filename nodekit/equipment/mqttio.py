"""paho-mqtt 2.x clients as the agents use them: background network thread,
automatic reconnects, one log line per connect / disconnect (never a password).
"""

import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

OnConnected = Callable[[mqtt.Client], None]


def connect(
    *,
    client_id: str,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    log: logging.Logger,
    on_connected: OnConnected | None = None,
    on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
    keepalive: int = 30,
    clean_session: bool = True,
    max_queued: int = 0,
) -> mqtt.Client:
    """Start a client that connects in the background and keeps reconnecting.

    ``on_connected`` runs after every successful (re)connect, the place to
    subscribe. ``clean_session=False`` keeps a persistent session (the broker
    queues qos 1 messages while we are away). ``max_queued`` bounds the
    messages kept while the broker is away (0 = no bound). Stop it with
    :func:`disconnect`.
    """
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
    )
    if user:
        client.username_pw_set(user, password)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if max_queued:
        client.max_queued_messages_set(max_queued)
    state = {"connected": False, "last_error": ""}
    where = f"MQTT broker {host}:{port}"

    def _on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            msg = f"{where} refused {client_id} (user {user or '-'}): {reason}"
            if msg != state["last_error"]:
                log.warning("%s", msg)
                state["last_error"] = msg
            return
        state["connected"], state["last_error"] = True, ""
        log.info("connected to %s as %s", where, client_id)
        if on_connected is not None:
            on_connected(c)

    def _on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if state["connected"] and reason.is_failure:
            log.warning("disconnected from %s: %s, reconnecting", where, reason)
        elif state["connected"]:
            log.info("disconnected from %s", where)
        state["connected"] = False

    def _on_connect_fail(_c: mqtt.Client, _u: Any) -> None:
        msg = f"cannot reach {where}, retrying"
        if msg != state["last_error"]:
            log.warning("%s", msg)
            state["last_error"] = msg

    client.on_connect = _on_connect
    client.on_disconnect = _on_disconnect
    client.on_connect_fail = _on_connect_fail
    if on_message is not None:
        client.on_message = on_message
    client.connect_async(host, port, keepalive=keepalive)
    client.loop_start()
    return client


def disconnect(client: mqtt.Client) -> None:
    """Disconnect cleanly and stop the network thread."""
    client.disconnect()
    client.loop_stop()
