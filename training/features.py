"""Backbone activation cache: the frozen lower Xception (blocks 1–13) is ~90% of training cost on
CPU, so it runs once per image view and its output (7×7×1024) is stored under the cache directory;
training runs and fine-tunes only the top block on it. Training views are stored as float16 (half
the memory); validation views as float32, because thresholds are chosen on their scores and must
hold for the exported float32 graph.

Views: `clean` (as decoded), `shift<k>` (a seeded `augment.shift` copy), `frame<k>` (a seeded
`framing.framed_copies` copy, then shifted at strength 1: proportions carry no class information),
`swap` (`framing.swapped_copies`: the shortcut-balanced view), `swapshift<k>` (swapped, then
shifted) and `zoomin` / `zoomout` (`framing.ZOOM_VIEWS`: centred zooms, proportions kept). The framing
recipe (the training zoom range) is kept in the cache's `framing.json`. Training uses the train
views; model selection and thresholds use the validation views,
every view but `clean` being part of the hard validation set. Validation views are also cached
under each non-identity test-time transform (`tta_val_<view>_<transform>.npy`), so the operating
points are chosen on the exported model's averaged scores.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from training import augment
from training import framing as framing_module
from training.data import Example, grouped_split, index_split, labels_of, load_pixels
from training.graph import INPUT_SIZE, TTA_TRANSFORMS, BottomExtractor, build_backbone, split_backbone

log = logging.getLogger(__name__)


def prepare_split(
    data_dir: Path, cache: Path, size: int, val_fraction: float, seed: int
) -> dict[str, list[Example]]:
    """Index `train/`, split it by patient and cache decoded pixels for both parts."""
    cache.mkdir(parents=True, exist_ok=True)
    train, val = grouped_split(index_split(data_dir, "train"), val_fraction, seed)
    parts = {"train": train, "val": val}
    for name, examples in parts.items():
        target = cache / f"pixels_{name}.npy"
        if not target.exists():
            _save_whole(target, load_pixels(examples, size))
    manifest = {
        name: [{**asdict(e), "path": str(e.path)} for e in examples] for name, examples in parts.items()
    }
    (cache / "split.json").write_text(json.dumps(manifest, indent=1))
    settings = {"data": "train/", "val_fraction": val_fraction, "seed": seed, "group": "patient"}
    (cache / "split_settings.json").write_text(json.dumps(settings))
    log.info("split: %d train, %d val images", len(train), len(val))
    return parts


def cache_views(
    data_dir: Path, weights: str, cache: Path, train_views: int, val_views: int, framing: bool, val_fraction: float,
    seed: int, zoom_range: tuple[float, float] | None = None, zoom_views: bool = False,
) -> None:
    """Split `train/` by patient and cache the lower backbone's activations of the views: validation
    `clean` and `shift<k>` (with `framing`, also `swap` and `swapshift<k>`) under every test-time
    transform; training `clean` and `shift<k>`, or with `framing` `frame<k>` only (framed with
    `zoom_range`, default `framing.ZOOM`); with `zoom_views`, also the zoomed validation views."""
    prepare_split(data_dir, cache, INPUT_SIZE, val_fraction, seed)
    _save_recipe(cache, zoom_range or framing_module.ZOOM)
    bottom, _ = split_backbone(build_backbone(INPUT_SIZE, weights))
    extractor = BottomExtractor(bottom)
    val = [("val", "clean", 1.0)] + [("val", f"shift{k}", 1.5) for k in range(val_views)]
    if framing:
        val += [("val", "swap", 1.0)] + [("val", f"swapshift{k}", 1.5) for k in range(val_views)]
        train = [("train", f"frame{k}", 1.0) for k in range(train_views)]
        if zoom_views:
            val += [("val", name, 1.0) for name in framing_module.ZOOM_VIEWS]
    else:
        train = [("train", "clean", 1.0)] + [("train", f"shift{k}", 1.0) for k in range(train_views)]
    jobs = [(*job, transform) for job in val for transform in TTA_TRANSFORMS]
    jobs += [(*job, "identity") for job in train]
    for part, view, strength, transform in jobs:
        cache_grids(extractor, cache, part, view, strength, seed, transform)


def load_split(cache: Path) -> dict[str, list[Example]]:
    manifest = json.loads((cache / "split.json").read_text())
    return {
        name: [Example(**{**row, "path": Path(row["path"])}) for row in rows]
        for name, rows in manifest.items()
    }


def view_pixels(cache: Path, part: str, view: str, strength: float, seed: int) -> np.ndarray:
    pixels = np.load(cache / f"pixels_{part}.npy")
    if view == "clean":
        return pixels
    labels = labels_of(load_split(cache)[part])
    offset = 500 if part == "val" else 0
    if view.startswith("frame"):
        index = int(view.removeprefix("frame"))
        zoom_range = _load_recipe(cache)
        pixels = framing_module.framed_copies(pixels, labels, seed=seed * 1000 + 200 + index, zoom_range=zoom_range)
        return augment.shifted_copies(pixels, seed=seed * 1000 + 300 + index, strength=strength)
    if view in framing_module.ZOOM_VIEWS:
        return framing_module.zoomed_copies(pixels, framing_module.ZOOM_VIEWS[view])
    if view.startswith("swap"):
        pixels = framing_module.swapped_copies(pixels, labels)
        view = view.removeprefix("swap")
        if not view:
            return pixels
    index = int(view.removeprefix("shift"))
    return augment.shifted_copies(pixels, seed=seed * 1000 + index + offset, strength=strength)


def _save_recipe(cache: Path, zoom_range: tuple[float, float]) -> None:
    """The training framing's zoom range; a cache built with another one is refused (its views would mix)."""
    target = cache / "framing.json"
    recipe = {"zoom_range": [float(z) for z in zoom_range]}
    if target.exists() and json.loads(target.read_text()) != recipe:
        raise ValueError(f"{cache} was built with framing {target.read_text()}, not {recipe}: use another cache")
    target.write_text(json.dumps(recipe))


def _load_recipe(cache: Path) -> tuple[float, float]:
    target = cache / "framing.json"
    if not target.exists():  # caches made before the recipe was recorded used version 5's
        return framing_module.ZOOM
    low, high = json.loads(target.read_text())["zoom_range"]
    return (low, high)


def cache_grids(
    extractor: BottomExtractor, cache: Path, part: str, view: str, strength: float, seed: int,
    transform: str = "identity", batch: int = 32,
) -> None:
    """Lower-backbone activations of one view of one part as `grid_<part>_<view>.npy`, or of a
    test-time transform of it as `tta_<part>_<view>_<transform>.npy`."""
    name = f"grid_{part}_{view}" if transform == "identity" else f"tta_{part}_{view}_{transform}"
    target = cache / f"{name}.npy"
    if target.exists():
        return
    pixels = view_pixels(cache, part, view, strength, seed)
    dtype = np.float32 if part == "val" else np.float16
    out = np.zeros((len(pixels), *extractor.bottom.output_shape[1:]), dtype)
    started = time.monotonic()
    for start in range(0, len(pixels), batch):
        out[start : start + batch] = extractor(pixels[start : start + batch, ..., None], transform).numpy()
        done = min(start + batch, len(pixels))
        if (start // batch) % 20 == 0 or done == len(pixels):
            rate = done / max(time.monotonic() - started, 1e-9)
            log.info("activations %s: %d/%d (%.1f img/s)", name, done, len(pixels), rate)
    _save_whole(target, out)


def _save_whole(target: Path, array: np.ndarray) -> None:
    """`np.save` under a `partial-` name, then renamed: an interrupted run leaves no complete-looking file."""
    partial = target.with_name(f"partial-{target.name}")
    np.save(partial, array)
    partial.rename(target)


def view_keys(cache: Path, part: str | None = None) -> list[str]:
    """The cached views, `"<part>_<view>"`, sorted (of one part when `part` is given)."""
    return sorted(path.stem.removeprefix("grid_") for path in cache.glob(f"grid_{part + '_' if part else ''}*.npy"))


def load_grids(cache: Path) -> dict[str, np.ndarray]:
    """`{"<part>_<view>": activations}`, memory-mapped."""
    return {key: np.load(cache / f"grid_{key}.npy", mmap_mode="r") for key in view_keys(cache)}


def load_tta_grids(cache: Path, key: str) -> dict[str, np.ndarray]:
    """`{transform: activations}` of one cached view (`"<part>_<view>"`), the identity included."""
    grids = {"identity": np.load(cache / f"grid_{key}.npy", mmap_mode="r")}
    for path in sorted(cache.glob(f"tta_{key}_*.npy")):
        grids[path.stem.removeprefix(f"tta_{key}_")] = np.load(path, mmap_mode="r")
    return grids
