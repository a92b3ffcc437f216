"""Per-locker broker credentials through Mosquitto's dynamic-security plugin.

The cloud manages lockers' MQTT users over MQTT itself (``$CONTROL/dynamic-security/v1``):
no shared password file, no broker reload, and a deleted locker is disconnected
at once. Every locker user gets a role of its own, ``locker-{id}``, which lets
it write only its own ``status``, ``events``, ``state`` and ``cmd/ack`` and
subscribe only to its own ``cmd``, ``config`` and ``ack``. (One shared role
with ``%u`` patterns would be neater, but Mosquitto 2.0.11, Debian 12's, does
not expand them in dynamic-security ACLs: tested.) The cloud's own user gets
the ``helmet-cloud`` role; ingest workers that run on their own get the
narrower ``helmet-ingest`` role and a user of their own, never the admin's.

A locker's user is bound to its client id (the locker id): with its password
and any other client id the broker refuses the connection, so one locker's
credentials can neither throw another client off nor resume its session.
Receiving is denied by default (``publishClientReceive``): each role names
what it may be sent, as well as what it may subscribe to.
"""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from helmet_cloud.errors import UpstreamError
from helmet_protocol.topics import INGEST_SHARE_GROUP, ROOT, Channel, all_lockers, check_locker_id, topic

CONTROL = "$CONTROL/dynamic-security/v1"
CLOUD_ROLE = "helmet-cloud"
INGEST_ROLE = "helmet-ingest"


def locker_acls(locker_id: str) -> list[dict[str, Any]]:
    """Exactly the locker's own topics (docs/mqtt.md: write status/events/state/cmd/ack, read cmd/config/ack)."""
    writes = [Channel.STATUS, Channel.EVENTS, Channel.STATE, Channel.CMD_ACK]
    reads = [Channel.CMD, Channel.CONFIG, Channel.ACK]
    return [
        *({"acltype": "publishClientSend", "topic": topic(locker_id, ch), "allow": True} for ch in writes),
        *({"acltype": "subscribeLiteral", "topic": topic(locker_id, ch), "allow": True} for ch in reads),
        *({"acltype": "publishClientReceive", "topic": topic(locker_id, ch), "allow": True} for ch in reads),
    ]


_CLOUD_ACLS = [
    {"acltype": "publishClientSend", "topic": f"{ROOT}/#", "allow": True},
    {"acltype": "subscribePattern", "topic": f"{ROOT}/#", "allow": True},
    {"acltype": "publishClientReceive", "topic": f"{ROOT}/#", "allow": True},
    # Mosquitto checks a shared subscription against its full "$share/{group}/..." text: without this
    # ACL the ingest workers' subscription is refused and no event reaches the cloud (tested).
    {"acltype": "subscribePattern", "topic": f"$share/{INGEST_SHARE_GROUP}/{ROOT}/#", "allow": True},
]
# An ingest worker on its own: reads what lockers send, writes acks and the resend commands it asks for.
_INGEST_ACLS = [
    *({"acltype": "publishClientSend", "topic": all_lockers(ch), "allow": True} for ch in (Channel.ACK, Channel.CMD)),
    *(
        acl
        for ch in (Channel.EVENTS, Channel.STATUS, Channel.STATE, Channel.CMD_ACK)
        for acl in (
            {"acltype": "subscribePattern", "topic": all_lockers(ch), "allow": True},
            {"acltype": "subscribePattern", "topic": f"$share/{INGEST_SHARE_GROUP}/{all_lockers(ch)}", "allow": True},
            {"acltype": "publishClientReceive", "topic": all_lockers(ch), "allow": True},
        )
    ),
]
ROLES = {CLOUD_ROLE: _CLOUD_ACLS, INGEST_ROLE: _INGEST_ACLS}


class BrokerAdminError(UpstreamError):
    """The broker refused or did not answer a dynamic-security command."""


class DynsecAdmin:
    """A client with the dynsec admin role; each call waits for the broker's answer."""

    def __init__(self, host: str, port: int, username: str, password: str, *, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._pending: dict[str, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._lock = threading.Lock()
        c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"dynsec-{uuid.uuid4().hex[:8]}")
        c.username_pw_set(username, password)
        c.on_message = self._on_message
        c.connect(host, port)
        c.subscribe(f"{CONTROL}/response", qos=1)
        c.loop_start()
        self.client = c

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        for response in json.loads(msg.payload).get("responses", []):
            with self._lock:
                waiting = self._pending.pop(response.get("correlationData", ""), None)
            if waiting is not None:
                waiting[1].append(response)
                waiting[0].set()

    def command(self, command: str, **fields: Any) -> dict[str, Any]:
        """Run one dynsec command and return its response, or raise with the broker's error."""
        correlation = uuid.uuid4().hex
        done: tuple[threading.Event, list[dict[str, Any]]] = (threading.Event(), [])
        with self._lock:
            self._pending[correlation] = done
        payload = {"commands": [{"command": command, "correlationData": correlation, **fields}]}
        self.client.publish(CONTROL, json.dumps(payload), qos=1)
        if not done[0].wait(self.timeout):
            raise BrokerAdminError(f"{command}: no answer from the broker in {self.timeout} s")
        response = done[1][0]
        if response.get("error"):
            raise BrokerAdminError(f"{command}: {response['error']}")
        return response

    def ensure_roles(self, locker_ids: Iterable[str] = ()) -> None:
        """Create (or refresh) the cloud's roles and bind ``locker_ids``' users to their client ids.

        Safe to call on every start; a broker set up before the binding existed is brought up to it.
        """
        self.command("setDefaultACLAccess", acls=[{"acltype": "publishClientReceive", "allow": False}])
        for locker_id in locker_ids:
            self._refresh_locker(locker_id)
        for role, acls in ROLES.items():
            try:
                self.command("createRole", rolename=role, acls=acls)
            except BrokerAdminError as exc:
                if "already exists" not in str(exc):
                    raise
                for acl in acls:
                    self._add_acl(role, acl)

    def create_locker(self, locker_id: str) -> str:
        """A new broker user for a locker, bound to its id as client id; returns its password (shown once,
        stored only on the locker)."""
        role = f"locker-{check_locker_id(locker_id)}"
        password = secrets.token_urlsafe(24)
        self.command("createRole", rolename=role, acls=locker_acls(locker_id))
        self.command(
            "createClient", username=locker_id, password=password, clientid=locker_id, roles=[{"rolename": role}]
        )
        return password

    def _refresh_locker(self, locker_id: str) -> None:
        """An existing locker user: bound to its client id, its role with today's ACLs (none added twice)."""
        try:
            self.command("setClientId", username=check_locker_id(locker_id), clientid=locker_id)
        except BrokerAdminError as exc:
            if "not found" not in str(exc):
                raise
            return  # registered while the cloud did not manage broker users: nothing to bind
        for acl in locker_acls(locker_id):
            self._add_acl(f"locker-{locker_id}", acl)

    def _add_acl(self, role: str, acl: dict[str, Any]) -> None:
        try:
            self.command("addRoleACL", rolename=role, **acl)
        except BrokerAdminError as exc:
            if "already exists" not in str(exc):
                raise

    def rotate_locker(self, locker_id: str) -> str:
        """A new password for a replaced Pi; the old one stops working at once."""
        password = secrets.token_urlsafe(24)
        self.command("setClientPassword", username=check_locker_id(locker_id), password=password)
        return password

    def delete_locker(self, locker_id: str) -> None:
        """Decommission: the user is gone and any live connection is dropped."""
        self.command("deleteClient", username=check_locker_id(locker_id))
        self.command("deleteRole", rolename=f"locker-{locker_id}")

    def create_cloud_user(self, username: str, password: str, *, role: str = CLOUD_ROLE) -> None:
        self.command("createClient", username=username, password=password, roles=[{"rolename": role}])
