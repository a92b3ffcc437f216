"""Putting a Pi into service: enrolment codes and bundles, broker credentials, decommissioning."""

from __future__ import annotations

import io
import json
import logging
import time
from datetime import datetime
from typing import Annotated

import segno
from fastapi import APIRouter, Body, Path, Request, Response, status
from pydantic import BaseModel, Field
from sqlmodel import Session

from helmet_cloud.adapters.dynsec import BrokerAdminError, DynsecAdmin
from helmet_cloud.context import AppContext
from helmet_cloud.domain.roles import Caller
from helmet_cloud.errors import ConflictError, NotFoundError, TooManyRequestsError, UpstreamError
from helmet_cloud.http.deps import AdminDep, CtxDep, SessionDep, TechnicianDep, client_address
from helmet_cloud.models import Locker
from helmet_cloud.services import audit
from helmet_cloud.services.enrolment import (
    EnrolmentRefusedError,
    broker_ca,
    build_bundle,
    claim,
    cloud_url,
    create_code,
    new_broker_password,
    open_code,
    publish_ack,
    revoke_codes,
)
from helmet_cloud.timeutil import utcnow
from helmet_protocol.enrolment import EnrolmentBundle, bundle_file, qr_text
from helmet_protocol.topics import LOCKER_ID_RE

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["provisioning"])
LockerIdPath = Annotated[str, Path(pattern=LOCKER_ID_RE.pattern)]
CodePath = Annotated[str, Path(min_length=12, max_length=20)]
# Module size of the enrolment QR in the SVG: 8 user units, so a 4-M code (33 modules + quiet zone) is 328 wide.
SVG_SCALE = 8


class Credentials(BaseModel):
    mqtt_username: str
    mqtt_password: str


class EnrolmentRequest(BaseModel):
    minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60, description="default: enrolment_code_minutes")


class EnrolmentCodePublic(BaseModel):
    locker_id: str
    code: str = Field(description="shown once; the cloud keeps only its hash")
    expires_at: datetime
    qr_text: str = Field(description="what the enrolment QR says: HSE1:{cloud}#{code}")
    qr_svg: str = Field(description="the QR as inline SVG markup")
    svg_url: str


class ExchangeRequest(BaseModel):
    code: str = Field(min_length=1, max_length=64)


def _locker(session: Session, locker_id: str) -> Locker:
    locker = session.get(Locker, locker_id)
    if locker is None:
        raise NotFoundError("no locker {locker}", locker=locker_id)
    return locker


def _admin(ctx: AppContext, session: Session, locker_id: str) -> DynsecAdmin:
    _locker(session, locker_id)
    if ctx.broker_admin is None:
        raise ConflictError("this cloud does not manage broker users (broker_admin_*)")
    return ctx.broker_admin


def _qr(text: str) -> segno.QRCode:
    return segno.make(text, error="m", micro=False)


def _issue_bundle(ctx: AppContext, session: Session, locker: Locker) -> EnrolmentBundle:
    """New broker credentials and the bundle that carries them; the caller commits."""
    try:
        ca_pem = broker_ca(ctx)
        password = new_broker_password(ctx, locker.id)
    except EnrolmentRefusedError as exc:
        session.rollback()
        log.error("enrolment of %s: %s", locker.id, exc)
        raise
    except BrokerAdminError as exc:
        session.rollback()
        raise UpstreamError("the broker refused: {reason}", reason=str(exc)) from None
    return build_bundle(ctx, session, locker, password, ca_pem)


def _audit(session: Session, caller: Caller, action: str, locker_id: str, **detail: object) -> None:
    audit.record(
        session,
        actor=caller,
        action=action,
        subject_type="locker",
        subject_id=locker_id,
        detail=detail or None,
    )


@router.post("/lockers/{locker_id}/enrolment", status_code=status.HTTP_201_CREATED)
def create_enrolment_code(
    locker_id: LockerIdPath,
    session: SessionDep,
    ctx: CtxDep,
    caller: TechnicianDep,
    body: Annotated[EnrolmentRequest | None, Body()] = None,
) -> EnrolmentCodePublic:
    """A one-time code for the Pi (``helmet-edge enroll CODE``, or the QR held to the kiosk camera).

    Any earlier open code for this locker stops working.
    """
    issued = create_code(session, ctx, caller=caller, locker_id=locker_id, minutes=body.minutes if body else None)
    text = issued.qr_text
    return EnrolmentCodePublic(
        locker_id=locker_id,
        code=issued.code,
        expires_at=issued.expires_at,
        qr_text=text,
        qr_svg=_qr(text).svg_inline(scale=SVG_SCALE),
        svg_url=f"/api/lockers/{locker_id}/enrolment/{issued.code}.svg",
    )


@router.get("/lockers/{locker_id}/enrolment/{code}.svg", response_class=Response)
def enrolment_qr_svg(
    locker_id: LockerIdPath, code: CodePath, session: SessionDep, ctx: CtxDep, _: TechnicianDep
) -> Response:
    """The enrolment QR as an SVG image, while its code is open."""
    try:
        row = open_code(session, locker_id, code)
    except ValueError:
        row = None
    if row is None:
        raise NotFoundError("no open enrolment code like that for this locker")
    out = io.BytesIO()
    _qr(qr_text(cloud_url(ctx), code)).save(out, kind="svg", scale=SVG_SCALE, title=f"Enrol {locker_id}")
    return Response(out.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"})


@router.post("/enrolment")
def exchange_code(body: ExchangeRequest, request: Request, session: SessionDep, ctx: CtxDep) -> Response:
    """The Pi's side (no sign-in: the code is the credential): a code, once, for the locker's bundle file."""
    client = client_address(request)
    wait = ctx.limits.enrolment_per_address.hit(client, time.monotonic())
    if wait is not None:
        log.warning("enrolment: %s is over the attempt limit", client)
        raise TooManyRequestsError(
            "too many enrolment attempts from this address: try again in {wait} s", retry_after=wait, wait=wait
        )
    try:
        row = claim(session, body.code)
    except EnrolmentRefusedError as exc:
        session.rollback()
        log.warning("enrolment from %s refused: %s", client, exc)
        raise
    row.used_from = client[:64]
    locker = _locker(session, row.locker_id)
    bundle = _issue_bundle(ctx, session, locker)
    audit.record(
        session,
        actor=row.created_by,
        action="locker.enrol",
        subject_type="locker",
        subject_id=locker.id,
        detail={"from": client, "last_seq": bundle.last_seq},
    )
    session.commit()
    publish_ack(ctx, locker.id, bundle.last_seq)
    log.info("locker %s enrolled from %s (seq continues after %d)", locker.id, client, bundle.last_seq)
    return Response(
        json.dumps(bundle_file(bundle)), media_type="application/json", headers={"Cache-Control": "no-store"}
    )


@router.post("/lockers/{locker_id}/bundle")
def export_bundle(locker_id: LockerIdPath, session: SessionDep, ctx: CtxDep, caller: TechnicianDep) -> Response:
    """An offline bundle file (``helmet-edge enroll --bundle FILE``) for a site with no network at install time.

    Like an exchanged code, it carries new broker credentials (the previous Pi is cut off) and kills open codes.
    """
    locker = _locker(session, locker_id)
    revoke_codes(session, locker_id, utcnow())
    bundle = _issue_bundle(ctx, session, locker)
    _audit(session, caller, "locker.bundle_export", locker_id, last_seq=bundle.last_seq)
    session.commit()
    publish_ack(ctx, locker.id, bundle.last_seq)
    return Response(
        json.dumps(bundle_file(bundle), indent=2),
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{locker_id}.enrolment.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/lockers/{locker_id}/credentials")
def new_credentials(locker_id: LockerIdPath, session: SessionDep, ctx: CtxDep, caller: TechnicianDep) -> Credentials:
    """A new broker password for the locker (a replaced Pi); the old one stops working at once."""
    admin = _admin(ctx, session, locker_id)
    try:
        password = admin.rotate_locker(locker_id)
    except BrokerAdminError as exc:
        raise UpstreamError("the broker refused: {reason}", reason=str(exc)) from None
    _audit(session, caller, "locker.credentials", locker_id)
    session.commit()
    return Credentials(mqtt_username=locker_id, mqtt_password=password)


@router.post("/lockers/{locker_id}/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke(locker_id: LockerIdPath, session: SessionDep, ctx: CtxDep, caller: AdminDep) -> Response:
    """Decommission: the locker's broker user is deleted, its connection dropped and its enrolment codes die."""
    admin = _admin(ctx, session, locker_id)
    revoke_codes(session, locker_id, utcnow())
    try:
        admin.delete_locker(locker_id)
    except BrokerAdminError as exc:
        session.rollback()
        raise UpstreamError("the broker refused: {reason}", reason=str(exc)) from None
    _audit(session, caller, "locker.decommission", locker_id)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
