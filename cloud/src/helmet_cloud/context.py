"""Everything request code needs, built once in the lifespan from settings: typed, never read off ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from helmet_cloud.adapters.dynsec import DynsecAdmin
from helmet_cloud.adapters.metrics import Metrics
from helmet_cloud.adapters.mqtt import CloudMqtt
from helmet_cloud.adapters.passkeys import PassKeys
from helmet_cloud.adapters.sms import SmsSender
from helmet_cloud.ingest.worker import IngestWorker
from helmet_cloud.services.alerter import Alerter
from helmet_cloud.services.committed import CommitHook
from helmet_cloud.services.feedcache import FeedCache
from helmet_cloud.services.ratelimit import Backoff, RateLimiter
from helmet_cloud.services.watermark import Watermark
from helmet_cloud.settings import CloudSettings


@dataclass(frozen=True, slots=True)
class Limits:
    """The request limits, each counted in this process's memory."""

    passes_per_caller: RateLimiter
    passes_per_address: RateLimiter
    enrolment_per_address: RateLimiter
    # Sign-in (services/auth): codes texted per client address; password tries per account and per address.
    # The limits per phone number are kept in the database (OneTimeCode), so every replica shares them.
    codes_per_address: RateLimiter
    passwords_per_account: Backoff
    passwords_per_address: Backoff

    @classmethod
    def from_settings(cls, s: CloudSettings) -> Limits:
        cap, first = s.password_backoff_max_seconds, s.password_backoff_first_seconds
        return cls(
            passes_per_caller=RateLimiter(s.pass_requests_per_minute, 60),
            passes_per_address=RateLimiter(s.pass_requests_per_minute_per_ip, 60),
            enrolment_per_address=RateLimiter(s.enrolment_attempts_per_10_minutes, 600),
            codes_per_address=RateLimiter(s.codes_sent_per_window_per_ip, s.sign_in_window_minutes * 60),
            passwords_per_account=Backoff(s.password_free_failures, cap, first=first),
            passwords_per_address=Backoff(s.password_free_failures_per_ip, cap, first=first),
        )


@dataclass(slots=True)
class AppContext:
    settings: CloudSettings
    engine: Engine
    keys: PassKeys
    mqtt: CloudMqtt
    sms: SmsSender
    limits: Limits
    metrics: Metrics
    watermark: Watermark
    feed_cache: FeedCache = field(default_factory=FeedCache)
    # Told of every commit that changes derived state: the feed cache and the alerter listen.
    after_commit: CommitHook = field(default_factory=CommitHook)
    # Manages lockers' broker users when the broker runs the dynamic-security plugin (docs/mqtt.md).
    broker_admin: DynsecAdmin | None = None
    # Runs alert checks after actions that change what alerts watch (retiring a helmet, resolving by hand).
    alerter: Alerter | None = None
    # The ingest worker ``serve`` runs in its own process, if it does (settings.ingest_in_process).
    ingest_worker: IngestWorker | None = None
