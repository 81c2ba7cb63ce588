"""How the shipped model scores pictures that arrive larger than its input, with and without the JPEG
compression the training pictures went through: on the validation split, then (a check, nothing is chosen on
them) on the 16 full-resolution originals.

Each validation file (224×224, in the training set's form) is enlarged, bicubic, to a radiograph-like size
(900-1,800 px wide, aspect 0.6-0.9, seeded) and sent as a lossless PNG through the shared decode path, once as
the gateway does it (resize, then JPEG quality 75 as `train/` was made) and once resized only. Printed: per path,
AUC, mean probability per class, mean |Δp| against the file itself, and sensitivity / specificity at each stored
operating point. The originals are scored by the same two paths: probabilities per class, and how many are
flagged at each operating point.

    .venv/bin/python scripts/resize-form-check.py --data-dir ../shared/data/chest_xray [--limit N]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from radiograph import imaging
from radiograph.savedmodel import LoadedModel
from training.data import labels_of, load_pixels
from training.evaluate import VALIDATION, examples_for, score
from training.metrics import at_threshold, auc

MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"


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
    return np.asarray(imaging.resized_gray(imaging.decode(data, size), size), dtype=np.uint8)


PATHS = {"gateway (resized + JPEG q75)": gateway, "resized only": resized_only}


def print_operating_points(model: LoadedModel, labels: np.ndarray, p: np.ndarray) -> None:
    for name, point in model.metadata.operating_points.items():
        at = at_threshold(labels, p, point.threshold)
        sensitivity = f"{at['sensitivity']:.3f} ({at['tp']} of {at['tp'] + at['fn']})"
        specificity = f"{at['specificity']:.3f} ({at['tn']} of {at['tn'] + at['fp']})"
        print(f"  {name} ({point.threshold}): sensitivity {sensitivity}, specificity {specificity}")


def is_pillow_quality(data: bytes, quality: int) -> bool:
    reference = io.BytesIO()
    Image.new("L", (16, 16)).save(reference, "JPEG", quality=quality)
    return Image.open(io.BytesIO(data)).quantization[0] == Image.open(reference).quantization[0]


def check_originals(model: LoadedModel, data_dir: Path) -> None:
    size = model.metadata.input_height
    originals = sorted((data_dir / "fullres_samples").glob("*/*.jpeg"))
    labels = np.array([path.parent.name == "PNEUMONIA" for path in originals], dtype=np.int32)
    data = [path.read_bytes() for path in originals]
    quality = imaging.TRAINING_JPEG_QUALITY
    at_quality = np.array([is_pillow_quality(d, quality) for d in data])
    print(f"\noriginals saved at quality {quality} (luma table): NORMAL {at_quality[labels == 0].sum()} of "
          f"{(labels == 0).sum()}, PNEUMONIA {at_quality[labels == 1].sum()} of {labels.sum()}")
    for name, path in PATHS.items():
        p = score(model, np.stack([path(d, size) for d in data]))["probability"]
        print(f"\n{len(originals)} full-resolution originals, {name}: NORMAL {np.round(np.sort(p[labels == 0]), 3)}, "
              f"PNEUMONIA {np.round(np.sort(p[labels == 1]), 3)}")
        print_operating_points(model, labels, p)


def main(
    data_dir: Annotated[Path, typer.Option(help="Data set root (the public layout).")],
    limit: Annotated[int, typer.Option(help="Use N validation images, evenly spaced (0: all).")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the enlarged sizes.")] = 5,
) -> None:
    model = LoadedModel.from_dir(MODEL_DIR)
    size = model.metadata.input_height
    examples = examples_for(data_dir, VALIDATION, model)
    examples = examples[:: max(len(examples) // limit, 1)][:limit] if limit else examples
    labels = labels_of(examples)
    files = load_pixels(examples, size)
    rng = np.random.default_rng(seed)
    enlarged = [enlarged_png(pixels, rng) for pixels in files]
    paths = {"validation files as they are": files}
    paths.update({f"enlarged, {name}": np.stack([path(d, size) for d in enlarged]) for name, path in PATHS.items()})
    scores = {name: score(model, pixels)["probability"] for name, pixels in paths.items()}
    reference = scores["validation files as they are"]
    print(f"model version {model.version}, {len(examples)} validation images ({int(labels.sum())} PNEUMONIA)")
    for name, p in scores.items():
        print(f"\n{name}: AUC {auc(labels, p):.4f}; mean p NORMAL {p[labels == 0].mean():.3f}, "
              f"PNEUMONIA {p[labels == 1].mean():.3f}; mean |Δp| vs the files {np.abs(p - reference).mean():.4f}")
        print_operating_points(model, labels, p)
    check_originals(model, data_dir)


if __name__ == "__main__":
    typer.run(main)
