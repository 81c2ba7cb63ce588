"""INPUT arguments of `score` → the image files they name, each once, as absolute paths."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from pathlib import Path

from client._images import CONTENT_TYPES

LIST_SUFFIXES = frozenset({".txt", ".lst"})
"""A file with one of these suffixes is a list of image paths, one per line (# comments, relative to the cwd)."""


class NoImages(ValueError):
    """An INPUT names no image."""


def is_image(path: Path) -> bool:
    return path.suffix.lower() in CONTENT_TYPES and path.is_file()


def _named_by(arg: str) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        return sorted(found for found in path.rglob("*") if is_image(found))
    if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
        lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        return [Path(line) for line in lines if line and not line.startswith("#")]
    if path.is_file():
        return [path]
    if any(char in arg for char in "*?["):
        return sorted(found for found in map(Path, glob.glob(arg, recursive=True)) if is_image(found))
    raise NoImages(f"{arg}: no such file or directory")


def expand(args: Iterable[str]) -> list[str]:
    """Directories (recursively: .jpeg .jpg .png .dcm), globs (`**` allowed), image files and list files.
    Paths in a list are taken as they are: one that does not exist fails when it is scored, in its own row."""
    seen: dict[str, None] = {}
    for arg in args:
        found = _named_by(arg)
        if not found:
            raise NoImages(f"{arg}: no .jpeg, .jpg, .png or .dcm image")
        seen.update((os.path.abspath(path), None) for path in found)
    return list(seen)
