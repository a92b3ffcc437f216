"""Hostile HTTP (docs/reliability.md, scenario 10).

Schemathesis fuzzes every operation of the real cloud's OpenAPI spec over real
HTTP; every operation the spec marks as secured refuses a missing or wrong
token; a resident cannot reach another resident's loans, passes or commands;
the pass endpoint is rate-limited.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from support.cloud_events import at, event, inbound, insert_town
from support.cloud_users import resident_headers, user_headers
from support.processes import CloudProcess

from helmet_cloud.adapters.database import make_engine
from helmet_cloud.app import create_app
from helmet_cloud.domain.security import token_hash
from helmet_cloud.ingest.ingestor import Ingestor
from helmet_cloud.models import ApiToken
from helmet_cloud.settings import CloudSettings
from helmet_sim.broker import Broker
from helmet_sim.cloud_client import CloudClient
from reliability.sizes import scale

# Operations anyone may call. A new operation without security in the spec fails the test below until it is
# either secured or consciously listed here.
PUBLIC = {
    ("POST", "/api/auth/code"),
    ("POST", "/api/auth/verify"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/enrolment"),  # a Pi's one-time enrolment code is its credential (rate-limited per address)
    ("GET", "/api/towns"),
    ("GET", "/api/towns/{town_id}"),
    ("GET", "/api/stations"),
    ("GET", "/api/stations/{station_id}"),
    ("GET", "/gbfs/gbfs.json"),
    ("GET", "/gbfs/system_information.json"),
    ("GET", "/gbfs/station_information.json"),
    ("GET", "/gbfs/station_status.json"),
    ("GET", "/gbfs/system_alerts.json"),
    ("GET", "/health"),
    ("GET", "/ready"),
}


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


def test_every_secured_operation_refuses_a_missing_or_wrong_token(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    ops = operations(spec)
    unsecured = {(m, p) for m, p, op in ops if not op.get("security")}
    assert unsecured <= PUBLIC, f"operations without auth that are not meant to be public: {unsecured - PUBLIC}"
    secured = [(m, p) for m, p, op in ops if op.get("security")]
    assert len(secured) >= 20  # the spec really lists them
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "bearer " + "x" * 5000},
    ]
    let_in = []
    for method, path in secured:
        url = path.replace("{", "").replace("}", "")  # any value: auth is checked before the path's target
        for headers in bad_headers:
            resp = api.request(method, url, headers=headers, json={})
            if resp.status_code != 401:
                let_in.append(f"{method} {path} with {list(headers.values())[:1]}: {resp.status_code}")
    assert let_in == []


def resident(api: TestClient, settings: CloudSettings, phone: str) -> tuple[dict[str, str], str]:
    """Sign a resident in by SMS code: (headers, resident id)."""
    headers = resident_headers(api, settings, phone)
    token = headers["Authorization"].removeprefix("Bearer ")
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return headers, s.exec(select(ApiToken.subject).where(ApiToken.token_hash == token_hash(token))).one()
    finally:
        engine.dispose()


def test_a_resident_cannot_reach_another_residents_loans_passes_or_commands(
    api: TestClient, settings: CloudSettings, engine: Engine
) -> None:
    ana, ana_id = resident(api, settings, "+41790000011")
    ben, ben_id = resident(api, settings, "+41790000012")
    insert_town(engine, {"LK-0001": ("ST-A", 4)}, slots=True)
    Ingestor(engine, lambda *_: None).handle(
        inbound(
            [
                event("LK-0001", 1, at(0), "helmet.stocked", slot=1, helmet_id="H-1"),
                event("LK-0001", 2, at(0), "helmet.stocked", slot=2, helmet_id="H-2"),
                event("LK-0001", 3, at(5), "helmet.borrowed", slot=1, helmet_id="H-1", resident_id=ana_id),
                event("LK-0001", 4, at(6), "helmet.borrowed", slot=2, helmet_id="H-2", resident_id=ben_id),
            ]
        )
    )
    assert [loan["helmet_id"] for loan in api.get("/api/loans", headers=ana).json()] == ["H-1"]
    assert [loan["helmet_id"] for loan in api.get("/api/loans", headers=ben).json()] == ["H-2"]
    # Asking for the other resident by id changes nothing for a resident.
    snooped = api.get("/api/loans", headers=ana, params={"resident_id": ben_id}).json()
    assert [loan["resident_id"] for loan in snooped] == [ana_id]
    # Ana's pass cannot be opened, or even confirmed to exist, by Ben.
    issued = api.post("/api/passes", headers=ana, json={"quantity": 1}).json()
    resp = api.post(f"/api/passes/{issued['pass_id']}/open", headers=ben, json={"locker_id": "LK-0001"})
    assert resp.status_code == 404
    for path in ("/api/events", "/api/dead-letters", "/api/export/loans.csv", "/api/alerts", "/api/helmets/H-1"):
        assert api.get(path, headers=ana).status_code == 403, path


@pytest.fixture
def limited(tmp_path: Path, settings: CloudSettings) -> Iterator[TestClient]:
    tight = settings.model_copy(
        update={"pass_requests_per_minute": 3, "pass_requests_per_minute_per_ip": 6, "max_helmets_per_resident": 16}
    )
    with TestClient(create_app(tight)) as client:
        yield client


def test_the_pass_endpoint_is_rate_limited_per_resident_and_per_address(
    limited: TestClient, settings: CloudSettings, caplog: pytest.LogCaptureFixture
) -> None:
    ana, _ = resident(limited, settings, "+41790000021")
    ben, _ = resident(limited, settings, "+41790000022")
    codes = [limited.post("/api/passes", headers=ana, json={"quantity": 1}).status_code for _ in range(4)]
    assert codes == [201, 201, 201, 429]
    refused = limited.post("/api/passes", headers=ana, json={"quantity": 1})
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "too many pass requests" in refused.json()["detail"]
    assert any(r.getMessage().endswith("is over 3 a minute") for r in caplog.records)
    # Ana's five requests count against the address too: Ben, from it, gets the sixth, then 429.
    codes = [limited.post("/api/passes", headers=ben, json={"quantity": 1}).status_code for _ in range(2)]
    assert codes == [201, 429]
    assert any("address testclient is over 6 a minute" in r.getMessage() for r in caplog.records)


# -- schemathesis against the real server ------------------------------------------------------------------


@dataclass
class Served:
    url: str
    staff: dict[str, str]
    resident: dict[str, str]


@pytest.fixture
def served(tmp_path: Path, database_url: str, mosquitto: Broker) -> Iterator[Served]:
    """The cloud as it runs for real (``helmet-cloud serve``) with a town, a staff user and a resident."""
    cloud = CloudProcess(
        tmp_path / "cloud",
        mosquitto.port,
        database_url,
        HELMET_PASS_REQUESTS_PER_MINUTE="10000",
        HELMET_PASS_REQUESTS_PER_MINUTE_PER_IP="100000",
    )
    try:
        cloud.add_user("ana", "admin", "s3cret passphrase")
        staff = cloud.start().login("ana", "s3cret passphrase")
        staff.create_station("ST-A", "Hall", 47.37, 8.54)
        staff.register_locker("LK-0001", "ST-A", 6)
        res = CloudClient(cloud.url).sign_in_resident("+41790000031", cloud.sms_file)
        yield Served(cloud.url, {"Authorization": f"Bearer {staff.token}"}, {"Authorization": f"Bearer {res.token}"})
        staff.close()
        res.close()
    finally:
        cloud.stop()


CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def fuzz(op: Any, url: str, headers: dict[str, str], examples: int) -> int:
    """Run ``examples`` generated requests against one operation; raises on the first failed check."""
    calls = 0

    @given(case=op.as_strategy())
    @hsettings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=url, headers=headers)
        case.validate_response(response, checks=CHECKS)

    run()
    return calls


def test_schemathesis_finds_no_server_error_and_no_response_outside_the_schema(served: Served) -> None:
    """Every operation, fuzzed as staff and as a resident: no 5xx, every response as the spec says."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    examples = scale("http_examples", 15)
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()
        for who, headers in (("staff", served.staff), ("resident", served.resident)):
            try:
                tried += fuzz(op, served.url, headers, examples)
            except BaseException as exc:  # collect every operation's failure, then report them together
                failures.append(f"{op.label} as {who}: {str(exc)[:800]}")
    assert failures == [], "\n\n".join(failures)
    assert tried > 100
    print(f"\n{tried} generated requests, no failure")


def test_values_the_database_cannot_hold_are_a_clear_422_not_a_500(
    api: TestClient, settings: CloudSettings, database_url: str
) -> None:
    """Found by the fuzzing above: a huge threshold, and on PostgreSQL a NUL in a name, gave 500."""
    staff = user_headers(api, settings, role="admin")
    station = {"id": "ST-9", "name": "Hall", "lat": 47.0, "lon": 8.0}
    assert api.post("/api/stations", headers=staff, json={**station, "high_threshold": 2**63}).status_code == 422
    nul = api.post("/api/stations", headers=staff, json={**station, "name": "Ha\u0000ll"})
    if database_url.startswith("postgresql"):
        assert nul.status_code == 422 and "cannot be stored" in nul.json()["detail"]
    else:
        assert nul.status_code == 201  # SQLite keeps it as it came


def integer_parameters(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Every integer path or query parameter in the spec, as (method, path, name, where)."""
    found = []
    for method, path, op in operations(spec):
        for param in op.get("parameters", []):
            schema = param.get("schema", {})
            if "integer" in [schema.get("type"), *(alt.get("type") for alt in schema.get("anyOf", []))]:
                found.append((method, path, param["name"], param["in"]))
    return found


def test_an_integer_too_big_for_the_database_is_refused_not_a_500(api: TestClient, settings: CloudSettings) -> None:
    """Found by the fuzzing above (offsets and ids beyond 64 bits gave 500); every operation, from the spec."""
    staff = user_headers(api, settings, role="admin")
    huge = str(2**70)
    params = integer_parameters(api.get("/openapi.json").json())
    assert len(params) >= 10
    broken = []
    for method, path, name, where in params:
        url = (path.replace("{" + name + "}", huge) if where == "path" else path).replace("{", "").replace("}", "")
        resp = api.request(method, url, headers=staff, params={name: huge} if where == "query" else None, json={})
        if resp.status_code >= 500 or (resp.status_code == 422 and not resp.json().get("detail")):
            broken.append(f"{method} {path} {name}={huge}: {resp.status_code}")
    assert broken == []
