"""Settings, read from WAQUP_* environment variables (documented in README)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: First metrics port of `waqup up` when WAQUP_METRICS_PORT is unset.
DEFAULT_UP_METRICS_PORT = 9464


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WAQUP_", extra="ignore")

    #: SQLAlchemy URL. Unset: the SQLite file `<data_dir>/waqup.db`;
    #: `postgresql://...` selects PostgreSQL (psycopg 3); `memory://` keeps
    #: everything in process memory (tests, demos).
    database_url: str = ""
    #: Redis URL for the cache; unset keeps an in-process cache.
    redis_url: str | None = None
    #: NATS URL (JetStream) for events; unset relays the outbox in-process.
    #: Needed by any process that serves only some of the contexts (mesh mode).
    nats_url: str | None = None
    #: Seconds NATS waits for a consumer's ack before redelivering (a consumer
    #: that died mid-message gets it again after this long).
    nats_ack_wait_seconds: float = Field(default=30.0, gt=0)
    #: gRPC target of identity, for a process that serves other contexts only
    #: (mesh mode): it fetches identity's public keys from there.
    #: `host:port`, or `ipv4:h:p1,h:p2` for several workers.
    identity_target: str | None = None
    #: How often a process without identity refetches identity's JWKS.
    jwks_refresh_seconds: float = Field(default=30.0, gt=0)
    #: Worker processes per context for `waqup up` (and `serve --workers`);
    #: 0 means one per CPU core. Worker i listens on grpc_port + i.
    workers: int = Field(default=0, ge=0)
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 50051
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    envoy_admin_port: int = 9901
    #: Where the embedded mode keeps its files (signing keys, Envoy config).
    data_dir: Path = Path("var")
    #: Directory of PEM signing keys; default `<data_dir>/keys`.
    jwt_key_dir: Path | None = None
    #: A new key (`waqup rotate-key`) is published at once and signs only once
    #: it is this old: at least WAQUP_JWT_KEY_RELOAD_SECONDS plus the longer of
    #: WAQUP_EDGE_JWKS_CACHE_SECONDS and WAQUP_JWKS_REFRESH_SECONDS, so every
    #: verifier knows it first (checked at start-up; 0 turns the delay off).
    jwt_key_activation_seconds: float = Field(default=60.0, ge=0)
    #: How often identity's workers look for added or removed keys.
    jwt_key_reload_seconds: float = Field(default=10.0, gt=0)
    #: Key of the page tokens (32 bytes, base64url): every process serving a
    #: context must share it. Unset: `<data_dir>/page-token.key`, created once.
    page_token_key: str | None = None
    jwt_issuer: str = "waqup-identity"
    jwt_audience: str = "waqup-api"
    access_token_ttl_seconds: int = Field(default=900, gt=0, le=900)
    refresh_token_ttl_days: int = Field(default=30, gt=0, le=365)
    #: How often the outbox relay polls when nothing woke it.
    outbox_poll_seconds: float = Field(default=1.0, gt=0)

    # --- scheduled jobs (services/runtime/scheduler.py) ---
    #: A credit hold not committed or released this long after ReserveCredits
    #: is released by the sweep (its caller is presumed dead).
    hold_ttl_seconds: float = Field(default=1800.0, gt=0)
    #: How often the sweep of expired holds runs; 0 = never.
    hold_sweep_interval_seconds: float = Field(default=60.0, ge=0)
    #: How often each retention job runs; 0 = never.
    retention_interval_seconds: float = Field(default=3600.0, ge=0)
    #: Rows deleted per statement (and transaction) by a retention job.
    retention_batch_size: int = Field(default=1000, ge=1, le=100_000)
    #: Idempotency keys (request ids) are kept this long.
    idempotency_retention_hours: float = Field(default=24.0, gt=0)
    #: Records of handled events are kept this long: longer than any
    #: redelivery, including a replay of a NATS stream (which keeps messages
    #: 7 days), or a replayed event would be handled twice.
    processed_events_retention_days: float = Field(default=14.0, gt=7)
    #: Published outbox messages are kept this long (unpublished ones always).
    outbox_retention_days: float = Field(default=7.0, gt=0)
    #: Audit log entries are kept this long.
    audit_log_retention_days: float = Field(default=365.0, gt=0)
    #: Where the jobs' leases live (one runner per job across all processes):
    #: `database` (a lease row in WAQUP_DATABASE_URL; in memory for memory://)
    #: or `redis` (WAQUP_REDIS_URL, SET NX PX).
    scheduler_lock: Literal["database", "redis"] = "database"
    log_level: str = "INFO"
    #: Port of a process's Prometheus metrics (`/metrics`, on the gRPC host);
    #: 0 = off. `waqup serve`: unset is off. `waqup up` and `serve --workers N`:
    #: worker i gets this port + i (unset: DEFAULT_UP_METRICS_PORT for `up`).
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    #: OTLP/gRPC endpoint for traces (`http://127.0.0.1:4317`; `https://` for
    #: TLS); unset: no spans are recorded, trace ids are still in the logs.
    otlp_endpoint: str | None = None
    #: Event loop of the worker processes: `uvloop` or `asyncio`.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    #: Password hashes computed at once per process (each holds ~19 MiB); 0 means
    #: one per CPU core. Up to 64 more wait; a burst beyond that is refused
    #: (UNAVAILABLE, PASSWORD_HASHING_BUSY).
    password_hash_concurrency: int = Field(default=0, ge=0)

    # --- creation (conversation, content, audio, library) ---
    #: Port of worker 0's HTTP server (WebSocket of conversations, signed
    #: media in embedded mode); worker i listens on this + i. 0: grpc_port + 1000.
    worker_http_port: int = Field(default=0, ge=0, le=65535)
    #: Where playback URLs of the embedded object store point: the edge's
    #: public address. Unset: http://<http_host>:<http_port>.
    public_base_url: str | None = None
    #: Key of signed media URLs (32 bytes, base64url), shared by every worker.
    #: Unset: `<data_dir>/media-url.key`, created once.
    media_url_key: str | None = None
    #: Seconds an item's playback metadata stays cached (`ritual:{id}:metadata`);
    #: 0 turns the cache off (every playback reads the database: bench's misses).
    playback_cache_seconds: int = Field(default=3600, ge=0, le=86_400)
    #: Seconds a playback URL works.
    playback_url_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    #: Credits each type costs (a new person's free credit buys an affirmation set).
    credit_cost_affirmation: int = Field(default=1, ge=1, le=1000)
    #: Credits a new version of a READY item (another voice or bed) costs.
    credit_cost_rerender: int = Field(default=1, ge=1, le=1000)
    credit_cost_guided_meditation: int = Field(default=2, ge=1, le=1000)
    credit_cost_ritual: int = Field(default=2, ge=1, le=1000)
    #: Creations a person may start per hour (RESOURCE_EXHAUSTED beyond).
    creations_per_hour: int = Field(default=30, ge=1)
    #: Seconds a conversation lives after its last activity.
    session_ttl_seconds: int = Field(default=3600, ge=60)
    #: A creation step idle this long is queued again (its job was lost); a
    #: creation older than the deadline fails (CREATION_TIMED_OUT), free.
    creation_resume_after_seconds: float = Field(default=120.0, gt=0)
    creation_deadline_seconds: float = Field(default=1200.0, gt=0)
    #: How often the sweep of stuck creations runs; 0 = never.
    creation_sweep_interval_seconds: float = Field(default=30.0, ge=0)
    #: Render jobs one process runs at once (audio workers scale by process).
    render_concurrency: int = Field(default=1, ge=1, le=64)
    #: Text jobs one process runs at once.
    text_concurrency: int = Field(default=4, ge=1, le=64)
    #: Seconds before an unacknowledged job is delivered again (a worker that
    #: died mid-job); live workers extend it while they work.
    job_ack_wait_seconds: float = Field(default=30.0, gt=0)
    #: Text generation: `offline` (the embedded composer) or `openai` (any
    #: OpenAI-compatible server). Unset: openai when WAQUP_OPENAI_API_KEY is set.
    text_generator: Literal["offline", "openai"] | None = None
    openai_api_key: str | None = None
    #: Base URL of an OpenAI-compatible API (unset: OpenAI's).
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    #: Tried after the primary model's attempts failed; empty: none.
    openai_fallback_model: str = "gpt-4o"
    openai_timeout_seconds: float = Field(default=60.0, gt=0)
    #: Speech: `piper` (the embedded neural voice) or `elevenlabs`. Unset:
    #: elevenlabs when WAQUP_ELEVENLABS_API_KEY is set.
    speech: Literal["piper", "elevenlabs"] | None = None
    elevenlabs_api_key: str | None = None
    elevenlabs_base_url: str | None = None
    elevenlabs_model: str = "eleven_multilingual_v2"
    #: ElevenLabs voice id used for the default voice.
    elevenlabs_voice_id: str = "21m00Tcm4TlvDq8ikWAM"
    #: S3 bucket of the audio; unset: files under `<data_dir>/media`.
    s3_bucket: str | None = None
    #: Endpoint of an S3-compatible store (unset: AWS).
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    #: Create the bucket at start-up when it does not exist (development).
    s3_create_bucket: bool = False
    #: A CDN in front of the bucket: replaces the scheme and host of playback URLs.
    cdn_base_url: str | None = None

    # --- the marketplace: catalog, payments, rewards ---
    #: Recommendations use offline sentence embeddings (all-MiniLM-L6-v2, run
    #: with numpy) for what a pack is about; off: without that signal.
    recommend_embeddings: bool = True
    #: How often the search index gets the packs' new popularity (purchases
    #: and plays); 0 = never.
    search_popularity_refresh_seconds: float = Field(default=300.0, ge=0)
    #: OpenSearch for pack search (`https://user:pass@host:9200`); unset: the
    #: database's own full-text search (PostgreSQL, or SQLite FTS5).
    opensearch_url: str | None = None
    #: OpenSearch index of the packs.
    opensearch_index: str = "waqup-packs"
    #: Stripe secret key (`sk_...`); unset: the embedded payment simulator.
    stripe_api_key: str | None = None
    #: Stripe API base (a test double); unset: api.stripe.com.
    stripe_api_base: str | None = None
    #: Secret of the webhook endpoint (`whsec_...`). Unset: a random secret
    #: kept in `<data_dir>/stripe-webhook.secret` (the simulator signs with it).
    stripe_webhook_secret: str | None = None
    #: Webhooks older than this (their signed timestamp) are refused.
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    #: Where the payment page sends the person back.
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    #: Credit bundles on sale: `id:credits:price_minor:CURRENCY`, comma-separated.
    credit_bundles: str = "small:10:499:EUR,medium:30:1299:EUR,large:100:3499:EUR"
    #: Membership plans on sale: `id:price_minor:CURRENCY:month|year`, comma-separated.
    subscription_plans: str = "monthly:999:EUR:month,annual:7999:EUR:year"
    #: The creator's share of a sale, in percent (reward tokens accrue at
    #: this share of the sale amount, in minor units).
    creator_share_percent: int = Field(default=70, ge=0, le=100)

    # --- the edge (Envoy) ---
    #: Origins allowed to call the API from a browser, comma-separated exact
    #: origins (`https://app.waqup.com`) or `*`; empty allows none.
    edge_cors_origins: str = ""
    #: Requests per second for the whole listener (one token bucket); 0 = off.
    edge_rate_limit_per_second: int = Field(default=10_000, ge=0)
    #: Login + Register calls per minute per client address; 0 = off.
    edge_auth_rate_limit_per_minute: int = Field(default=10, ge=0)
    #: How long the edge keeps identity's JWKS before refetching it.
    edge_jwks_cache_seconds: int = Field(default=30, ge=1)
    #: Proxies in front of Envoy whose X-Forwarded-For entries are trusted for
    #: the client address (0: the connection's peer is the client).
    edge_xff_trusted_hops: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _database_in_data_dir(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'waqup.db'}"
        return self

    @field_validator("redis_url", "nats_url", "identity_target", "page_token_key",
                     "metrics_port", "otlp_endpoint", "public_base_url", "media_url_key",
                     "text_generator", "openai_api_key", "openai_base_url", "speech",
                     "elevenlabs_api_key", "elevenlabs_base_url", "s3_bucket",
                     "s3_endpoint_url", "s3_access_key_id", "s3_secret_access_key",
                     "cdn_base_url", "opensearch_url", "stripe_api_key", "stripe_api_base",
                     "stripe_webhook_secret", "checkout_success_url", "checkout_cancel_url",
                     mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _redis_lock_needs_redis(self) -> Settings:
        if self.scheduler_lock == "redis" and not self.redis_url:
            raise ValueError("scheduler_lock=redis needs redis_url (WAQUP_REDIS_URL)")
        return self

    @model_validator(mode="after")
    def _activation_covers_propagation(self) -> Settings:
        needed = self.jwt_key_reload_seconds + max(self.edge_jwks_cache_seconds,
                                                   self.jwks_refresh_seconds)
        if 0 < self.jwt_key_activation_seconds < needed:
            raise ValueError(
                f"jwt_key_activation_seconds ({self.jwt_key_activation_seconds:g}) must be at "
                f"least jwt_key_reload_seconds + max(edge_jwks_cache_seconds, "
                f"jwks_refresh_seconds) = {needed:g}, or 0")
        return self

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1

    @property
    def http_base_port(self) -> int:
        """Port of worker 0's HTTP server."""
        return self.worker_http_port or self.grpc_port + 1000

    @property
    def edge_url(self) -> str:
        host = "127.0.0.1" if self.http_host in ("0.0.0.0", "", "::") else self.http_host
        return (self.public_base_url or f"http://{host}:{self.http_port}").rstrip("/")

    @property
    def key_dir(self) -> Path:
        return self.jwt_key_dir or self.data_dir / "keys"
