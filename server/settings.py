"""Settings, read once from the environment (prefix DEALGRAPH_) and passed down."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEALGRAPH_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./dealgraph.db"
    data_dir: str = "./data"
    sharing: Literal["PRIVATE", "PUBLIC"] = "PRIVATE"
    base_currency: str = "EUR"

    # Request limits (a refused query gets a top-level error with extensions.code).
    max_page_size: int = 100
    default_page_size: int = 20
    max_query_depth: int = 12
    max_aliases: int = 50
    max_tokens: int = 5000

    # Database pool (PostgreSQL); SQLite waits this long for a lock before failing.
    pool_size: int = 10
    sqlite_busy_timeout_ms: int = 10_000

    log_level: str = "INFO"
