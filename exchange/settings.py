"""The axis's configuration: one typed object, loaded once per process.

Sources, weakest first: built-in defaults, the TOML file (``--config`` or
``EXCHANGE_CONFIG``), environment variables (``EXCHANGE_<KEY>``, nested keys
joined by ``__``, e.g. ``EXCHANGE_DATABASE__URL``), then command-line flags.
``config/exchange.toml`` documents every key; a test keeps it equal to these
defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from exchange.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Role = Literal["api", "worker", "all"]


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    tls_certificate: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # What this process does: "api" accepts and serves requests, "worker" pushes, forwards,
    # seals and sweeps, "all" does both (see README, "Deployment").
    role: Role = "all"

    @property
    def serves_api(self) -> bool:
        return self.role != "worker"

    @property
    def runs_work(self) -> bool:
        return self.role != "api"

    @property
    def tls(self) -> bool:
        return bool(self.tls_certificate)


class SystemLimits(_Section):
    """How much one system may ask at once and per second (429 with Retry-After beyond)."""

    max_in_flight: int = Field(default=32, ge=1)
    rate_per_s: float = Field(default=100.0, gt=0)
    burst: int = Field(default=200, ge=1)


class LimitsSettings(_Section):
    """Bounds on what one client can cost the axis: package size, connections, time, requests,
    bytes held."""

    # The largest package accepted (native and VXP intake): 413 before reading past it.
    max_package_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    max_connections: int = Field(default=10_000, ge=1)
    max_connections_per_address: int = Field(default=200, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0)
    idle_timeout_s: float = Field(default=75.0, gt=0)
    body_timeout_s: float = Field(default=30.0, gt=0)
    min_body_rate_bytes_per_s: int = Field(default=4096, ge=0)
    system: SystemLimits = SystemLimits()
    systems: dict[str, SystemLimits] = {}
    intake_max_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    intake_max_bytes_per_system: int = Field(default=32 * 1024 * 1024, gt=0)
    intake_bytes_per_s_per_system: int = Field(default=8 * 1024 * 1024, gt=0)
    intake_wait_s: float = Field(default=10.0, ge=0)
    intake_concurrency: int = Field(default=4, ge=1)

    def for_system(self, name: str) -> SystemLimits:
        return self.systems.get(name, self.system)


class DatabaseSettings(_Section):
    url: str = ""
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=10, ge=1)
    command_timeout_s: float = Field(default=30.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)


class TrustSettings(_Section):
    default_signature_policy: Literal["required", "if-present", "record", "off"] = "if-present"
    allow_legacy_sha1: bool = False
    axis_certificate: str = ""
    axis_key: str = ""
    default_attachment_signature_policy: Literal["off", "record", "official-required"] = "record"
    fetch_revocation: bool = False
    pdf_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    pdf_max_signatures: int = Field(default=8, ge=1)
    pdf_max_revisions: int = Field(default=64, ge=1)
    pdf_timeout_s: float = Field(default=30.0, gt=0)
    pdf_max_memory_mb: int = Field(default=1024, ge=64)
    receipt_algorithm: Literal["ES256", "RS256"] = "ES256"


# How much longer than an attempt (push_timeout_s) a delivery's lease lasts at least.
LEASE_MARGIN_S = 1.0


class DeliverySettings(_Section):
    enabled: bool = True
    max_attempts: int = Field(default=12, ge=1)
    max_age_s: float = Field(default=3 * 24 * 3600, gt=0)
    base_delay_s: float = Field(default=10.0, gt=0)
    max_delay_s: float = Field(default=3600.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    concurrency: int = Field(default=16, ge=1)
    per_endpoint_concurrency: int = Field(default=8, ge=1)
    pool_size: int = Field(default=4, ge=1)
    sweep_interval_s: float = Field(default=5.0, gt=0)
    push_timeout_s: float = Field(default=30.0, gt=0)
    trace_organ_id: str = ""
    allow_private_endpoints: bool = False

    @model_validator(mode="after")
    def _lease_outlasts_a_push(self) -> DeliverySettings:
        # A push (or forward) still waiting for its answer when its lease runs out is claimed
        # again, and the recipient gets the document twice. The margin covers recording the
        # outcome after an attempt that took all of push_timeout_s.
        if self.lease_s < self.push_timeout_s + LEASE_MARGIN_S:
            raise ValueError(
                f"lease_s ({self.lease_s:g}) must be at least {LEASE_MARGIN_S:g} s longer than"
                f" push_timeout_s ({self.push_timeout_s:g}), or a push still waiting for its answer"
                " is claimed and sent again"
            )
        return self


class AuditSettings(_Section):
    seal_interval_s: float = Field(default=1.0, gt=0)
    checkpoint_interval_s: float = Field(default=60.0, gt=0)
    max_seal_delay_s: float = Field(default=300.0, gt=0)


class RetentionSettings(_Section):
    body_max_age_days: int = Field(default=0, ge=0)
    interval_s: float = Field(default=3600.0, gt=0)


class AlertSettings(_Section):
    webhook_url: str = ""
    interval_s: float = Field(default=60.0, gt=0)
    failing_agency_threshold: int = Field(default=5, ge=1)
    certificate_warning_days: int = Field(default=30, ge=1)


# The SDK's timestamp carries no zone: a day either way is allowed on top of the configured limits.
TIMESTAMP_ZONE_SLACK_S = 24 * 3600


class VxpSettings(_Section):
    max_timestamp_age_s: float = Field(default=30 * 24 * 3600, gt=0)
    max_future_skew_s: float = Field(default=24 * 3600, ge=0)
    # "pending": agencies registered through registerAgency wait for an admin's approval;
    # "auto": they are in service at once.
    register_agency: Literal["pending", "auto"] = "pending"

    @property
    def replay_retention_s(self) -> float:
        """How long a spent signature is remembered: as long as its timestamp can be accepted.

        A timestamp T is accepted from T - skew - 1 day to T + max age + 1 day (the client's zone is
        unknown), so a signature first seen at S carries T <= S + skew + 1 day, and stays acceptable
        until at most S + skew + max age + 2 days.
        """
        return self.max_timestamp_age_s + self.max_future_skew_s + 2 * TIMESTAMP_ZONE_SLACK_S


class UiSettings(_Section):
    """The auditor web page: its sessions and how failed logins are slowed down."""

    session_lifetime_s: float = Field(default=8 * 3600.0, gt=0)
    secure_cookie: bool = False
    max_failed_logins: int = Field(default=5, ge=1)
    failed_login_window_s: float = Field(default=300.0, gt=0)


class UpstreamSettings(_Section):
    """One upstream VXP-compatible axis and the OrganIds routed to it."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    url: str
    system_id: str
    secret: str
    prefixes: list[str] = Field(min_length=1)
    poll_interval_s: float = Field(default=10.0, gt=0)
    sync_interval_s: float = Field(default=3600.0, gt=0)

    @property
    def relay_system(self) -> str:
        """The local system that stands for this axis when it hands us packages."""
        return f"upstream-{self.name}"

    def routes(self, organ_id: str) -> bool:
        return any(organ_id.startswith(prefix) for prefix in self.prefixes)


class PublicSettings(_Section):
    """The anonymous progress page and open-data feed under /public/ (aggregate counts only)."""

    enabled: bool = False
    cache_s: float = Field(default=300.0, gt=0)


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class Settings(BaseSettings):
    """Everything the server and the CLI read from configuration."""

    model_config = SettingsConfigDict(
        env_prefix="EXCHANGE_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    data_dir: Path = Path("var")
    server: ServerSettings = ServerSettings()
    limits: LimitsSettings = LimitsSettings()
    database: DatabaseSettings = DatabaseSettings()
    trust: TrustSettings = TrustSettings()
    delivery: DeliverySettings = DeliverySettings()
    audit: AuditSettings = AuditSettings()
    retention: RetentionSettings = RetentionSettings()
    alerts: AlertSettings = AlertSettings()
    vxp: VxpSettings = VxpSettings()
    ui: UiSettings = UiSettings()
    upstreams: list[UpstreamSettings] = []
    public: PublicSettings = PublicSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="before")
    @classmethod
    def _former_keys(cls, values: Any) -> Any:
        """``server.max_body_bytes`` (before ``limits.max_package_bytes`` existed) still works:
        it is read as ``limits.max_package_bytes`` unless that is given too."""
        if not isinstance(values, dict) or not isinstance(values.get("server"), dict):
            return values
        server = dict(values["server"])
        if "max_body_bytes" not in server:
            return values
        former = server.pop("max_body_bytes")
        limits = values.get("limits")
        limits = dict(limits) if isinstance(limits, dict) else {}
        limits.setdefault("max_package_bytes", former)
        return {**values, "server": server, "limits": limits}

    def upstream_for(self, organ_id: str) -> UpstreamSettings | None:
        return next((upstream for upstream in self.upstreams if upstream.routes(organ_id)), None)

    @property
    def embedded_database(self) -> bool:
        """True when no URL is configured and the axis runs its own PostgreSQL."""
        return not self.database.url

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir.resolve() / "pgdata"


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from defaults, file, environment and ``overrides`` (strongest).

    Overrides use the section layout (``database={"url": ...}``); ``None`` values are dropped
    so that an absent command-line flag does not mask the file or the environment.
    """
    if config_file is None and os.environ.get("EXCHANGE_CONFIG"):
        config_file = Path(os.environ["EXCHANGE_CONFIG"])
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    toml_file = config_file

    class _Sourced(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if toml_file is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file))
            return tuple(sources)

    try:
        loaded = _Sourced(**_drop_none(overrides))
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except ValueError as exc:  # a TOML syntax error surfaces as a ValueError subclass
        raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
    # Hand back a plain Settings: the helper class above only exists to pick the sources.
    return Settings.model_validate(loaded.model_dump())


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                cleaned[key] = value
        elif value is not None:
            cleaned[key] = value
    return cleaned


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"])
        problems.append(f"{where}: {error['msg']}")
    return "invalid configuration: " + "; ".join(problems)
