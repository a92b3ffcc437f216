"""Cloud settings from the environment (prefix ``HELMET_``) or keyword arguments.

Tests pass values directly instead of patching ``os.environ``; unknown keys
fail loudly.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from helmet_cloud.domain.phones import is_region


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELMET_", extra="forbid", env_file=None)

    database_url: str = "sqlite:///var/helmet-cloud.db"
    auto_migrate: bool = True
    data_dir: Path = Path("var")
    log_format: Literal["text", "json"] = "text"  # json: one object per line, for containers and journald
    # The interactive API docs at /docs (vendored Swagger UI); /openapi.json is always served.
    api_docs: bool = True

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # A dynamic-security admin on the broker: set both, and registering a locker creates its broker user.
    broker_admin_username: str | None = None
    broker_admin_password: SecretStr | None = None
    # The broker as lockers reach it, for their enrolment bundles (docs/deployment.md); unset: mqtt_host/_port.
    locker_mqtt_host: str | None = Field(default=None, max_length=253)
    locker_mqtt_port: int | None = Field(default=None, ge=1, le=65535)
    locker_mqtt_tls: bool = False
    locker_mqtt_ca_file: Path | None = None
    # How long an enrolment code stays valid, and exchanges allowed per client address in 10 minutes.
    enrolment_code_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    enrolment_attempts_per_10_minutes: int = Field(default=10, ge=1, le=10_000)
    # Run an ingest worker inside the API process (the embedded default).
    ingest_in_process: bool = True
    # Shared subscriptions split load across workers; off for brokers without them (amqtt).
    ingest_shared: bool = True
    ingest_batch: int = Field(default=500, ge=1, le=10_000)

    # Alerts and the loan lifecycle (docs/alerts.md).
    alert_sweep_seconds: float = Field(default=30, gt=0, le=3600)
    # Lockers republish their status every minute (edge mqtt.status_interval_s); 0 turns the check off.
    locker_heartbeat_minutes: int = Field(default=5, ge=0)
    loan_overdue_hours: int = Field(default=24, ge=1)
    loan_missing_days: int = Field(default=3, ge=1)
    loan_lost_days: int = Field(default=14, ge=1)
    forged_pass_burst: int = Field(default=5, ge=1, description="this many forged passes at one locker ...")
    forged_pass_window_minutes: int = Field(default=10, ge=1, description="... within this many minutes")
    webhook_urls: list[Annotated[str, Field(pattern=r"^https?://", max_length=2000)]] = []
    webhook_secret: SecretStr | None = None
    webhook_max_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_seconds: float = Field(default=2.0, ge=0, le=600, description="doubles after each failure")
    webhook_timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    # {"active": kid, "keys": {kid: base64 private key}}; generated on first start if missing.
    pass_keys_file: Path | None = None
    pass_ttl_minutes: int = Field(default=5, ge=1, le=60)
    # How often each API process re-reads the passes lockers must refuse, for uses it is not told of (a separate
    # ingest process) and refusals that lapsed; uses it is told of go out within a fraction of a second.
    refused_passes_check_seconds: float = Field(default=2.0, gt=0, le=600)
    max_quantity: int = Field(default=4, ge=1, le=16)
    max_helmets_per_resident: int = Field(default=4, ge=1, le=16)
    # Pass requests per minute, per resident and per client IP (per API process); more get 429 + Retry-After.
    pass_requests_per_minute: int = Field(default=10, ge=1, le=10_000)
    pass_requests_per_minute_per_ip: int = Field(default=120, ge=1, le=100_000)

    public_host: str = "helmets.example.org"
    # "log" writes one-time codes to the log; "file:PATH" appends them to a JSON-lines file.
    sms_backend: str = "log"
    otp_ttl_minutes: int = 10
    # Residents' numbers typed without a country code are read as this region's (ISO 3166 alpha-2), in a town
    # that sets none of its own (Town.phone_region); every number is stored and texted in E.164 (docs/api.md).
    default_phone_region: str = Field(default="CH", pattern=r"^[A-Z]{2}$")
    token_ttl_hours: int = 24 * 30
    # Sign-in limits (docs/operations.md, "Sign-in limits"). Per phone number, counted in the database over a
    # window that starts with the first try after the last window ended: tries at a code (right or wrong; a new
    # code does not reset them) and codes sent. Codes sent per client address, in a sliding window per API process.
    sign_in_window_minutes: int = Field(default=15, ge=1, le=24 * 60)
    code_tries_per_window: int = Field(default=5, ge=1, le=100)
    codes_sent_per_window: int = Field(default=3, ge=1, le=100)
    codes_sent_per_window_per_ip: int = Field(default=20, ge=1, le=100_000)
    # Passwords: after this many failed sign-ins in a row (per account; per client address), each further try
    # waits twice as long as the one before, from the first wait up to the most (per API process).
    password_free_failures: int = Field(default=5, ge=1, le=1000)
    password_free_failures_per_ip: int = Field(default=20, ge=1, le=100_000)
    password_backoff_first_seconds: int = Field(default=1, ge=1, le=3600)
    password_backoff_max_seconds: int = Field(default=900, ge=1, le=24 * 3600)

    # The public GBFS feed (docs/api.md): how the system names itself, and how long a document stays fresh.
    feed_system_id: str = Field(default="helmet-station", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    feed_name: str = Field(default="Helmet station", max_length=120)
    # The programme's name in the pages' other languages (JSON, e.g. HELMET_FEED_NAMES='{"zh": "共享头盔"}'): the
    # pages' header, the sticker page and the sign-in text.
    feed_names: dict[str, str] = Field(default_factory=lambda: {"zh": "共享头盔站"})
    feed_language: str = Field(default="en", pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")
    feed_contact_email: str = Field(default="helmets@example.org", max_length=254)
    feed_opening_hours: str = Field(default="24/7", max_length=256, description="OSM opening_hours syntax")
    feed_ttl_seconds: int = Field(default=60, ge=0, le=3600)

    # Directions to a station from the resident pages' lists (docs/web.md): a URL with {lat} and {lon}; rendered
    # as a plain link, so the page needs no network. OpenStreetMap's directions by default.
    directions_url: str = Field(
        default="https://www.openstreetmap.org/directions?to={lat},{lon}",
        pattern=r"^https?://\S*\{lat\}\S*\{lon\}|^https?://\S*\{lon\}\S*\{lat\}",
        max_length=500,
    )

    # The staff map (docs/web.md): a slippy-map tile template with {z}/{x}/{y}; unset, the map is a plain offline plot.
    # Each town may set its own (Town.map_tile_url); these are what a town that sets none gets.
    map_tile_url: str | None = Field(default=None, pattern=r"^(https?://|/)\S*\{z\}\S*\{x\}\S*\{y\}", max_length=500)
    map_attribution: str = Field(default="", max_length=300, description="the tile server's credit, shown on the map")

    # HTTP (docs/deployment.md, "HTTPS and the reverse proxy"; docs/operations.md). X-Forwarded-For and -Proto are
    # believed only with proxy_headers on (or `helmet-cloud serve --proxy-headers`), and then only from a peer in
    # forwarded_allow_ips: the reverse proxy's addresses or networks, comma-separated ("*": any peer; uvicorn's
    # forwarded_allow_ips). Off, the client address is the connection's, even from 127.0.0.1.
    proxy_headers: bool = False
    forwarded_allow_ips: str = Field(default="127.0.0.1,::1", max_length=2000)
    # Sign-in cookies are Secure (sent over HTTPS only) whatever the request says; false only for a cloud that
    # browsers reach over plain HTTP (a demo on this machine). Over HTTPS they are Secure either way.
    secure_cookies: bool = True
    # The largest request body any route reads; a bigger one is 413, counted as it arrives (Content-Length or not).
    max_body_bytes: int = Field(default=128 * 1024, ge=1024, le=64 * 1024 * 1024)

    @field_validator("default_phone_region")
    @classmethod
    def _phone_region(cls, value: str) -> str:
        if not is_region(value):
            raise ValueError(f"{value!r} is not a region with phone numbering data (ISO 3166 alpha-2, e.g. CH)")
        return value

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _addresses_or_networks(cls, value: str) -> str:
        """As uvicorn reads it, which would quietly never match a bad entry: "*" alone, or addresses and networks."""
        items = [part.strip() for part in value.split(",")]
        if items == ["*"]:
            return value
        for item in items:
            try:
                if "/" in item:
                    ipaddress.ip_network(item)
                else:
                    ipaddress.ip_address(item)
            except ValueError:
                raise ValueError(f'{item!r} is not an IP address or network (or "*" alone)') from None
        return value

    @property
    def keys_path(self) -> Path:
        return self.pass_keys_file or self.data_dir / "pass-keys.json"

    @model_validator(mode="after")
    def _alert_settings_agree(self) -> Self:
        if self.webhook_urls and self.webhook_secret is None:
            raise ValueError("webhook_urls need a webhook_secret to sign with")
        if not self.loan_overdue_hours <= self.loan_missing_days * 24 <= self.loan_lost_days * 24:
            raise ValueError("loan thresholds must grow: overdue (hours) <= missing (days) <= lost (days)")
        return self
