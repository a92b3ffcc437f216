"""The transport's ceiling: a bare paho-mqtt subscriber that only counts QoS 1 messages.

Run as its own process by ``bench/ingest_e2e.py`` (so it competes for the CPU
as an ingest worker process does). Prints ``ready`` once subscribed, then the
wall-clock time of the first and the ``--count``-th message as JSON.

    .venv/bin/python bench/bare_subscriber.py --port 1883 --count 10000
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_protocol.transport import set_tcp_nodelay


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--topic", default="$share/bare/helmet/v1/+/events")
    args = ap.parse_args()
    done, subscribed = threading.Event(), threading.Event()
    seen = {"n": 0, "first": 0.0, "last": 0.0}

    def on_message(_c: Any, _u: Any, _m: mqtt.MQTTMessage) -> None:
        seen["n"] += 1
        if seen["n"] == 1:
            seen["first"] = time.time()
        if seen["n"] >= args.count:
            seen["last"] = time.time()
            done.set()

    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-bare", clean_session=True)
    c.on_socket_open = set_tcp_nodelay
    c.on_connect = lambda cl, *_a: cl.subscribe(args.topic, qos=1)
    c.on_subscribe = lambda *_a: subscribed.set()
    c.on_message = on_message
    c.connect("127.0.0.1", args.port, keepalive=60)
    c.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    if not done.wait(600):
        print(json.dumps({"error": f"only {seen['n']} of {args.count} messages"}), flush=True)
        sys.exit(1)
    print(json.dumps(seen), flush=True)
    c.disconnect()
    c.loop_stop()


if __name__ == "__main__":
    main()
