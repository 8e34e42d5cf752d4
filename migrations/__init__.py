"""Alembic migrations (async template), one revision per schema change."""
