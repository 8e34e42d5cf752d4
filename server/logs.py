"""Logging for `dealgraph serve`, handed to uvicorn so that every worker uses it."""

from __future__ import annotations

from typing import Any


def logging_config(level: str) -> dict[str, Any]:
    handler = {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": handler},
        "loggers": {
            "dealgraph": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }
