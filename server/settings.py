"""Settings, read once from the environment (prefix DEALGRAPH_) and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALGRAPH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./dealgraph.db"
    data_dir: str = "./data"
    max_upload_bytes: int = 25 * 1024 * 1024  # a larger upload is refused (TOO_LARGE)
    sharing: Literal["PRIVATE", "PUBLIC"] = "PRIVATE"
    base_currency: str = "EUR"

    # Request limits (a refused query gets a top-level error with extensions.code).
    max_page_size: int = 100
    default_page_size: int = 20
    max_query_depth: int = 12
    max_aliases: int = 50
    max_tokens: int = 5000

    # Database pool (PostgreSQL): connections kept open per worker, opened as needed (as many
    # again open for a burst, closed when returned: at 16 requests at once, a pool of 10
    # reconnected every few requests, and those waited); SQLite waits this long for a lock.
    pool_size: int = 20
    sqlite_busy_timeout_ms: int = 10_000

    log_level: str = "INFO"

    # A verified token's viewer is kept this long per process (0: looked up every request).
    # A revocation or a change to users drops it at once (resolvers/tokens.py); this bounds
    # only what no notification announces (SQLite, written by another process).
    token_cache_seconds: float = 10.0

    # Read-only queries the planner covers run as cached plans (planner/); "off"
    # resolves everything field by field; "verify" runs both and records any difference
    # (the test suite's mode).
    planner: Literal["on", "off", "verify"] = "on"

    # Live updates: subscriptions over the WebSocket on /graphql (graphql-transport-ws).
    ws_max_connections: int = 1000  # per process; more are closed with 1013 (try again later)
    ws_max_subscriptions_per_connection: int = 20
    # Browser origins allowed besides the server's own (JSON list; "*" allows any); clients
    # that send no Origin (not browsers) are always allowed.
    ws_allowed_origins: list[str] = []
    ws_connection_init_timeout_seconds: float = 10.0  # to send connection_init
    ws_queue_size: int = 1000  # events waiting for a slow subscriber before it is cut off

    # The largest CSV file importOpportunities takes (bytes).
    max_import_bytes: int = 50 * 1024 * 1024
