"""Run a bench script with the project's virtualenv Python when the current Python lacks the
project's packages (`python bench/run.py` from anywhere)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

VENV_PYTHON = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"


def use_project_python() -> None:
    try:
        import httpx  # noqa: F401
        import rich  # noqa: F401
        import sqlalchemy  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists() and Path(sys.executable) != VENV_PYTHON:
            script = str(Path(sys.argv[0]).resolve())
            os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), script, *sys.argv[1:]])
        raise
