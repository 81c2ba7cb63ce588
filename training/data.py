"""The data set on disk: index, de-duplication, patient IDs and the patient-grouped validation split.

Layout (the public one): `<data_dir>/<split>/{NORMAL,PNEUMONIA}/*.jpeg`. Images of any size are
decoded by `radiograph.imaging.load_radiograph`, the gateway's own decode path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radiograph.imaging import load_radiograph

CLASS_DIRS = ("NORMAL", "PNEUMONIA")
LABELS = CLASS_DIRS
"""The model's labels, by class index (`Example.label`): its class folders' names."""
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png"})
SUBTYPES = ("normal", "bacteria", "virus")
PNEUMONIA_SUBTYPES = SUBTYPES[1:]

_PERSON = re.compile(r"^person(\d+)_(bacteria|virus)_", re.IGNORECASE)
_NORMAL = re.compile(r"^(?:NORMAL2-)?IM-(\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class Example:
    path: Path
    label: int  # 0 NORMAL, 1 PNEUMONIA
    subtype: str  # normal | bacteria | virus | unknown
    patient: str
    sha256: str


def patient_id(file_name: str) -> str:
    """Patient key from a Kermany file name. `IM-0115` and `NORMAL2-IM-0115` are treated as one
    patient: the conservative choice, since a wrong merge only costs a little data."""
    if match := _PERSON.match(file_name):
        return f"person{int(match.group(1))}"
    if match := _NORMAL.match(file_name):
        return f"im{int(match.group(1))}"
    return f"file:{file_name}"


def subtype_of(file_name: str, label: int) -> str:
    if label == 0:
        return "normal"
    match = _PERSON.match(file_name)
    return match.group(2).lower() if match else "unknown"


def index_split(data_dir: Path, split: str, deduplicate: bool = True) -> list[Example]:
    """All images of one split. With `deduplicate`, byte-identical copies are removed (first path
    kept; a picture found under both labels is dropped entirely); evaluation keeps every file."""
    root = data_dir / split
    if not root.is_dir():
        raise FileNotFoundError(f"no split {split!r} under {data_dir}")
    by_hash: dict[str, list[Example]] = {}
    for label, class_dir in enumerate(CLASS_DIRS):
        folder = root / class_dir
        if not folder.is_dir():
            raise FileNotFoundError(f"missing class folder {folder}")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            example = Example(path, label, subtype_of(path.name, label), patient_id(path.name), digest)
            by_hash.setdefault(digest, []).append(example)
    if deduplicate:
        examples = [group[0] for group in by_hash.values() if len({e.label for e in group}) == 1]
    else:
        examples = [e for group in by_hash.values() for e in group]
    return sorted(examples, key=lambda e: str(e.path))


def grouped_split(
    examples: Sequence[Example], val_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split by patient, stratified by class: no patient is on both sides."""
    rng = np.random.default_rng(seed)
    val_patients: set[str] = set()
    for label in (0, 1):
        patients = sorted({e.patient for e in examples if e.label == label})
        rng.shuffle(patients)
        n_images = sum(1 for e in examples if e.label == label)
        taken = 0
        for patient in patients:
            if taken >= val_fraction * n_images:
                break
            val_patients.add(patient)
            taken += sum(1 for e in examples if e.patient == patient and e.label == label)
    train = [e for e in examples if e.patient not in val_patients]
    val = [e for e in examples if e.patient in val_patients]
    return train, val


def load_pixels(examples: Sequence[Example], size: int, workers: int = 4) -> np.ndarray:
    """uint8 [n, size, size] through the gateway's decode path."""

    def one(example: Example) -> np.ndarray:
        return load_radiograph(example.path.read_bytes(), size).pixels

    with ThreadPoolExecutor(workers) as pool:
        return np.stack(list(pool.map(one, examples))) if examples else np.zeros((0, size, size), np.uint8)


def labels_of(examples: Sequence[Example]) -> np.ndarray:
    return np.array([e.label for e in examples], dtype=np.int32)
