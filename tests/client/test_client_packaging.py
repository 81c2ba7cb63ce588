"""The client installs and runs on its own: a fresh virtual environment, `pip install` of the client folder (its
dependencies pinned to the project's lock file), no TensorFlow, no gateway code."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_installs_and_runs_without_tensorflow(tmp_path: Path) -> None:
    source = tmp_path / "src" / "client"
    shutil.copytree(REPO / "client", source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "venv", tmp_path / "venv"], check=True, timeout=120)
    python, outside = tmp_path / "venv" / "bin" / "python", tmp_path / "elsewhere"
    outside.mkdir()
    install = [python, "-m", "pip", "install", "--quiet", "-c", REPO / "requirements" / "lock.txt", source]
    subprocess.run(install, check=True, timeout=300, cwd=outside)

    probe = (
        "import importlib.util, client; "
        "print(client.__file__); "
        "print([name for name in ('tensorflow', 'serving', 'radiograph', 'numpy') if importlib.util.find_spec(name)])"
    )
    shown = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True, cwd=outside).stdout
    location, present = shown.splitlines()
    assert Path(location).is_relative_to(tmp_path / "venv")
    assert present == "[]"
    for command in ([python, "-m", "client", "--help"], [tmp_path / "venv" / "bin" / "pneumonia-client", "--help"]):
        shown = subprocess.run(command, capture_output=True, text=True, check=True, cwd=outside).stdout
        assert "score" in shown and "evaluate" in shown
