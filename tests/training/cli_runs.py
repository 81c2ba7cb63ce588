"""What the training CLI tests share: a small copy of the data set and an in-process command run."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from training.cli import app


def small_copy(data_dir: Path, root: Path, per_class: int) -> Path:
    """`root/train/{NORMAL,PNEUMONIA}` with the first `per_class` files of each class, and the
    full-resolution samples linked beside it (what resize-check reads)."""
    for class_dir in ("NORMAL", "PNEUMONIA"):
        target = root / "train" / class_dir
        target.mkdir(parents=True)
        for path in sorted((data_dir / "train" / class_dir).glob("*.jpeg"))[:per_class]:
            shutil.copy(path, target / path.name)
    (root / "fullres_samples").symlink_to(data_dir / "fullres_samples")
    return root


def run(*args: str) -> str:
    """`python -m training ARGS` in this process; its output, after checking it succeeded."""
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"{args[0]} failed: {result.output}\n{result.exception!r}"
    return result.output
