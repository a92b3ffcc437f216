"""Cloud settings from the environment (prefix ``HELMET_``) or keyword arguments.

Tests pass values directly instead of patching ``os.environ``; unknown keys
fail loudly.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CloudSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELMET_", extra="forbid", env_file=None)

    database_url: str = "sqlite:///var/helmet-cloud.db"
    auto_migrate: bool = True
    data_dir: Path = Path("var")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(default=1883, ge=1, le=65535)
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    # Run an ingest worker inside the API process (the embedded default).
    ingest_in_process: bool = True
    # Shared subscriptions split load across workers; off for brokers without them (amqtt).
    ingest_shared: bool = True
    ingest_batch: int = Field(default=500, ge=1, le=10_000)

    # {"active": kid, "keys": {kid: base64 private key}}; generated on first start if missing.
    pass_keys_file: Path | None = None
    pass_ttl_minutes: int = Field(default=5, ge=1, le=60)
    max_quantity: int = Field(default=4, ge=1, le=16)
    max_helmets_per_resident: int = Field(default=4, ge=1, le=16)

    public_host: str = "helmets.example.org"
    # "log" writes one-time codes to the log; "file:PATH" appends them to a JSON-lines file.
    sms_backend: str = "log"
    otp_ttl_minutes: int = 10
    token_ttl_hours: int = 24 * 30

    @property
    def keys_path(self) -> Path:
        return self.pass_keys_file or self.data_dir / "pass-keys.json"
