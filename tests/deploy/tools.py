"""The external tools the deployment tests run (promtool, prometheus, kubectl's kustomize, hadolint: installed by
scripts/ci-tools and requirements/lock.txt)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """Path of a required tool; a clear failure (never a skip) when it is missing."""
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found is None:
        pytest.fail(f"{name} is not installed: run scripts/ci-tools (apt) and scripts/bootstrap (pip)")
    return found
