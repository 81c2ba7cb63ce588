"""How a model scores pictures that arrive larger than its input, with and without the JPEG compression
the training pictures went through: on the validation split, then (a check, nothing is chosen on them)
on the 16 full-resolution originals (`python -m training resize-check`).

Each validation file (224×224, in the training set's form) is enlarged, bicubic, to a radiograph-like
size (900-1,800 px wide, aspect 0.6-0.9, seeded) and sent as a lossless PNG through the shared decode
path, once as the gateway does it (resize, then JPEG quality 75 as `train/` was made) and once resized
only. Reported: per path, AUC, mean probability per class, mean |Δp| against the file itself, and
sensitivity / specificity at each stored operating point. The originals are scored by the same two
paths: probabilities per class, and how many are flagged at each operating point.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin

from radiograph import imaging
from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.savedmodel import LoadedModel
from training.data import LABELS, labels_of, load_pixels
from training.evaluate import VALIDATION, examples_for, score
from training.metrics import at_threshold, auc

FULL_RESOLUTION = "fullres_samples"
"""Folder of the data set with the full-resolution originals, `<label>/*.jpeg`."""


def enlarged_png(pixels: np.ndarray, rng: np.random.Generator) -> bytes:
    width = int(rng.uniform(900, 1800))
    height = int(width * rng.uniform(0.6, 0.9))
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((width, height), Image.Resampling.BICUBIC).save(buffer, "PNG")
    return buffer.getvalue()


def gateway(data: bytes, size: int) -> np.ndarray:
    """Resized and JPEG-compressed as `train/` was made."""
    return imaging.load_radiograph(data, size).pixels


def resized_only(data: bytes, size: int) -> np.ndarray:
    return np.asarray(imaging.resized_gray(imaging.decode(data), size), dtype=np.uint8)


PATHS: dict[str, Callable[[bytes, int], np.ndarray]] = {
    "gateway (resized + JPEG q75)": gateway,
    "resized only": resized_only,
}


def operating_point_lines(model: LoadedModel, labels: np.ndarray, p: np.ndarray) -> Iterator[str]:
    for name, point in model.metadata.operating_points.items():
        at = at_threshold(labels, p, point.threshold)
        sensitivity = f"{at['sensitivity']:.3f} ({at['tp']} of {at['tp'] + at['fn']})"
        specificity = f"{at['specificity']:.3f} ({at['tn']} of {at['tn'] + at['fp']})"
        yield f"  {name} ({point.threshold}): sensitivity {sensitivity}, specificity {specificity}"


def _luma_table(data: bytes) -> list[int] | None:
    image = Image.open(io.BytesIO(data))
    return list(image.quantization[0]) if isinstance(image, JpegImagePlugin.JpegImageFile) else None


def is_pillow_quality(data: bytes, quality: int) -> bool:
    reference = io.BytesIO()
    Image.new("L", (16, 16)).save(reference, "JPEG", quality=quality)
    return _luma_table(data) == _luma_table(reference.getvalue())


def validation_lines(model: LoadedModel, data_dir: Path, limit: int, seed: int) -> Iterator[str]:
    """The validation split (`limit` images evenly spaced, 0: all) as it is and enlarged, by both paths."""
    size = model.metadata.input_height
    examples = examples_for(data_dir, VALIDATION, model)
    examples = examples[:: max(len(examples) // limit, 1)][:limit] if limit else examples
    labels = labels_of(examples)
    files = load_pixels(examples, size)
    rng = np.random.default_rng(seed)
    enlarged = [enlarged_png(pixels, rng) for pixels in files]
    paths = {"validation files as they are": files}
    paths.update({f"enlarged, {name}": np.stack([path(d, size) for d in enlarged]) for name, path in PATHS.items()})
    scores = {name: score(model, pixels)[PROBABILITY_OUTPUT] for name, pixels in paths.items()}
    reference = scores["validation files as they are"]
    yield f"model version {model.version}, {len(examples)} validation images ({int(labels.sum())} {LABELS[1]})"
    for name, p in scores.items():
        yield (f"\n{name}: AUC {auc(labels, p):.4f}; mean p {LABELS[0]} {p[labels == 0].mean():.3f}, "
               f"{LABELS[1]} {p[labels == 1].mean():.3f}; mean |Δp| vs the files {np.abs(p - reference).mean():.4f}")
        yield from operating_point_lines(model, labels, p)


def originals_lines(model: LoadedModel, data_dir: Path) -> Iterator[str]:
    """The full-resolution originals by both paths, and how many were saved at the training quality."""
    size = model.metadata.input_height
    originals = sorted((data_dir / FULL_RESOLUTION).glob("*/*.jpeg"))
    labels = np.array([LABELS.index(path.parent.name) for path in originals], dtype=np.int32)
    data = [path.read_bytes() for path in originals]
    quality = imaging.TRAINING_JPEG_QUALITY
    at_quality = np.array([is_pillow_quality(d, quality) for d in data])
    yield (f"\noriginals saved at quality {quality} (luma table): {LABELS[0]} {at_quality[labels == 0].sum()} of "
           f"{(labels == 0).sum()}, {LABELS[1]} {at_quality[labels == 1].sum()} of {labels.sum()}")
    for name, path in PATHS.items():
        p = score(model, np.stack([path(d, size) for d in data]))[PROBABILITY_OUTPUT]
        yield (f"\n{len(originals)} full-resolution originals, {name}: {LABELS[0]} "
               f"{np.round(np.sort(p[labels == 0]), 3)}, {LABELS[1]} {np.round(np.sort(p[labels == 1]), 3)}")
        yield from operating_point_lines(model, labels, p)


def resize_check(model: LoadedModel, data_dir: Path, limit: int = 0, seed: int = 5) -> Iterator[str]:
    """The whole report, line by line."""
    yield from validation_lines(model, data_dir, limit, seed)
    yield from originals_lines(model, data_dir)
