"""Wire payloads and topics: what each side accepts and what it refuses."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest

from helmet_protocol import topics
from helmet_protocol.errors import PayloadError, TopicError
from helmet_protocol.messages import (
    CMD_OPS,
    COMMAND_ARGS,
    MAX_PAYLOAD_BYTES,
    MAX_SEQ,
    MAX_SLOTS,
    Ack,
    CmdOp,
    Command,
    Event,
    State,
    Status,
    decode,
    new_event_id,
)
from helmet_protocol.topics import Channel

TS = datetime(2026, 11, 28, 9, 0, 0, 123000, tzinfo=UTC)


def test_event_round_trip_keeps_millisecond_utc_timestamp() -> None:
    event = Event(event_id=new_event_id(), locker_id="LK-0001", seq=7, ts=TS, kind="helmet.borrowed", slot=2)
    wire = json.loads(event.to_json())
    assert wire["ts"] == "2026-11-28T09:00:00.123Z"
    assert wire["v"] == 1 and "helmet_id" not in wire
    assert decode(Event, event.to_json()) == event


def test_unknown_fields_are_ignored_and_unknown_kinds_kept() -> None:
    raw = {
        "v": 1,
        "event_id": "e1",
        "locker_id": "LK-0001",
        "seq": 1,
        "ts": "2026-11-28T09:00:00Z",
        "kind": "helmet.teleported",
        "colour": "red",
    }
    event = decode(Event, json.dumps(raw))
    assert event.kind == "helmet.teleported"
    assert event.known_kind is None


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"x" * (MAX_PAYLOAD_BYTES + 1), "limit is 16384"),
        (b'{"v": 2, "locker_id": "LK-0001", "seq": 1}', "unsupported protocol version v=2"),
        (b'{"locker_id": "LK-0001", "seq": 1}', "unsupported protocol version v=None"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"v": 1, "locker_id": "LK-0001", "seq": "many"}', "seq"),
        (b'{"v": 1, "locker_id": "#", "seq": 1}', "locker_id"),
    ],
)
def test_bad_payloads_are_refused_with_a_clear_reason(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode(Ack, payload)


def test_naive_timestamps_are_refused() -> None:
    raw = {"v": 1, "locker_id": "LK-0001", "online": True, "boot_id": "b", "fw": "1", "ts": "2026-11-28T09:00:00"}
    with pytest.raises(PayloadError, match="timezone"):
        decode(Status, json.dumps(raw))


def test_command_requires_the_arguments_of_its_op() -> None:
    with pytest.raises(PayloadError, match="needs slot"):
        decode(Command, b'{"v": 1, "cmd_id": "c1", "op": "unlock"}')
    with pytest.raises(PayloadError, match="op"):
        decode(Command, b'{"v": 1, "cmd_id": "c1", "op": "self_destruct"}')
    assert decode(Command, b'{"v": 1, "cmd_id": "c1", "op": "resend", "from_seq": 5}').from_seq == 5


def test_the_command_table_lists_every_op_the_wire_accepts() -> None:
    assert set(CMD_OPS) == set(typing.get_args(CmdOp))
    for op, args in COMMAND_ARGS.items():
        fields = dict.fromkeys(args, 1) | ({"pass_text": "x"} if "pass_text" in args else {})
        assert decode(Command, json.dumps({"v": 1, "cmd_id": "c1", "op": op, **fields})).op == op


def test_slot_numbers_run_to_the_protocol_limit() -> None:
    ok = {"v": 1, "cmd_id": "c1", "op": "unlock", "slot": MAX_SLOTS}
    assert decode(Command, json.dumps(ok)).slot == MAX_SLOTS
    with pytest.raises(PayloadError, match="slot"):
        decode(Command, json.dumps(ok | {"slot": MAX_SLOTS + 1}))


def test_state_slots_are_validated() -> None:
    raw = {
        "v": 1,
        "locker_id": "LK-0001",
        "seq": 3,
        "ts": "2026-11-28T09:00:00Z",
        "slots": [{"slot": 1, "state": "occupied", "helmet_id": "H-1"}, {"slot": 2, "state": "levitating"}],
    }
    with pytest.raises(PayloadError, match=r"slots\.1\.state"):
        decode(State, json.dumps(raw))


def test_event_ids_are_unique_and_time_ordered() -> None:
    ids = [new_event_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(i[14] == "7" for i in ids)  # UUID version 7
    assert ids[0][:8] <= ids[-1][:8]


def test_topics_build_and_parse_round_trip() -> None:
    for channel in Channel:
        built = topics.topic("LK-0001", channel)
        assert topics.parse(built) == ("LK-0001", channel)
    assert topics.topic("LK-0001", Channel.CMD_ACK) == "helmet/v1/LK-0001/cmd/ack"
    assert topics.shared(topics.all_lockers(Channel.EVENTS)) == "$share/ingest/helmet/v1/+/events"


@pytest.mark.parametrize(
    "bad",
    [
        "helmet/v1/LK-0001",
        "helmet/v2/LK-0001/events",
        "helmet/v1/+/events",
        "helmet/v1/LK-0001/evil",
        "helmet/v1/lk-1/events",
        "helmet/v1/#/status",
    ],
)
def test_topics_outside_the_contract_are_refused(bad: str) -> None:
    with pytest.raises(TopicError):
        topics.parse(bad)


def test_building_a_topic_refuses_wildcards_in_locker_ids() -> None:
    with pytest.raises(TopicError):
        topics.topic("LK-+", Channel.EVENTS)


@pytest.mark.parametrize("v", ["true", "1.0", '"1"'])
def test_version_must_be_the_integer_one(v: str) -> None:
    with pytest.raises(PayloadError, match="unsupported protocol version"):
        decode(Ack, f'{{"v": {v}, "locker_id": "LK-0001", "seq": 1}}')


def test_optional_timestamp_may_be_null() -> None:
    assert decode(Command, b'{"v": 1, "cmd_id": "c1", "op": "selftest", "ts": null}').ts is None


EVENT = {
    "v": 1,
    "event_id": "e1",
    "locker_id": "LK-0001",
    "seq": 3,
    "ts": "2026-11-28T09:00:00.123Z",
    "kind": "helmet.borrowed",
    "slot": 1,
}
STATUS = {"v": 1, "locker_id": "LK-0001", "online": True, "boot_id": "b", "fw": "1", "ts": "2026-11-28T09:00:00Z"}


@pytest.mark.parametrize(
    ("model", "raw", "where"),
    [
        (Event, EVENT | {"seq": "3"}, "seq: Input should be a valid integer"),
        (Event, EVENT | {"seq": 3.0}, "seq: Input should be a valid integer"),
        (Event, EVENT | {"seq": True}, "seq: Input should be a valid integer"),
        (Event, EVENT | {"slot": "1"}, "slot: Input should be a valid integer"),
        (Event, EVENT | {"helmet_id": 42}, "helmet_id: Input should be a valid string"),
        (Event, EVENT | {"ts": 1796029200}, "ts: .*ISO 8601"),
        (Event, EVENT | {"ts": "1796029200"}, "ts: .*ISO 8601"),
        (Status, STATUS | {"online": "yes"}, "online: Input should be a valid boolean"),
        (Status, STATUS | {"online": 0}, "online: Input should be a valid boolean"),
        (Status, STATUS | {"camera_ok": 1}, "camera_ok: Input should be a valid boolean"),
        (Ack, {"v": 1, "locker_id": "LK-0001", "seq": "7"}, "seq: Input should be a valid integer"),
        (Command, {"v": 1, "cmd_id": "c1", "op": "resend", "from_seq": "2"}, "from_seq: Input should be a valid"),
        (Command, {"v": 1, "cmd_id": "c1", "op": "unlock", "slot": "2"}, "slot: Input should be a valid integer"),
    ],
)
def test_values_of_the_wrong_json_type_are_refused_not_converted(
    model: type[Event | Status | Ack | Command], raw: dict[str, object], where: str
) -> None:
    """Issue 16, finding 9: pydantic's lax mode read "3" as 3, "yes" and 0 as booleans, 1796029200 as a time."""
    with pytest.raises(PayloadError, match=f"invalid {model.__name__}: {where}"):
        decode(model, json.dumps(raw))


def test_state_slot_numbers_must_be_integers() -> None:
    raw = {"v": 1, "locker_id": "LK-0001", "seq": 0, "ts": "2026-11-28T09:00:00Z", "slots": [{"slot": "1"}]}
    with pytest.raises(PayloadError, match=r"slots\.0\.slot: Input should be a valid integer"):
        decode(State, json.dumps(raw | {"slots": [{"slot": "1", "state": "empty"}]}))


def test_seq_is_bounded_by_what_a_64_bit_column_holds() -> None:
    assert decode(Event, json.dumps(EVENT | {"seq": MAX_SEQ})).seq == 2**63 - 1
    for model, raw in ((Event, EVENT), (Ack, {"v": 1, "locker_id": "LK-0001"})):
        with pytest.raises(PayloadError, match=f"seq: Input should be less than or equal to {MAX_SEQ}"):
            decode(model, json.dumps(raw | {"seq": MAX_SEQ + 1}))
    with pytest.raises(PayloadError, match="from_seq: Input should be less than or equal"):
        decode(Command, json.dumps({"v": 1, "cmd_id": "c1", "op": "resend", "from_seq": 2**64}))


def test_a_number_too_long_for_python_is_a_payload_error_not_a_value_error() -> None:
    with pytest.raises(PayloadError, match="not usable JSON"):
        decode(Ack, '{"v": 1, "locker_id": "LK-0001", "seq": 1' + "0" * 5000 + "}")


def test_well_typed_values_still_decode_and_python_built_models_are_not_strict() -> None:
    assert decode(Status, json.dumps(STATUS | {"ts": "2026-11-28T10:00:00+01:00"})).ts == datetime(
        2026, 11, 28, 9, tzinfo=UTC
    )
    assert decode(Event, json.dumps(EVENT)).slot == 1
    # Trusted code may still build a model from text (the edge's stored config does).
    assert Event.model_validate(EVENT | {"ts": "2026-11-28T09:00:00Z"}).ts == datetime(2026, 11, 28, 9, tzinfo=UTC)
