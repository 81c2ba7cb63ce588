"""`python -m training features | train | ensemble | export | evaluate | audit | error-review | drift-reference |
precision-points | rebuild-run | resize-check`."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal, cast

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

DataDir = Annotated[Path, typer.Option(help="Folder in the public layout: <split>/{NORMAL,PNEUMONIA}/*.jpeg")]
CacheDir = Annotated[Path, typer.Option(help="Where decoded pixels and backbone features are cached")]
Weights = Annotated[str, typer.Option(help='Xception no-top weights: an .h5 path, or "imagenet"')]
Seed = Annotated[int, typer.Option(help="Seed for the split, augmentation and head training")]


@app.callback()
def main() -> None:
    """Train, export and evaluate the pneumonia model."""


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@contextmanager
def _run_mismatch() -> Iterator[None]:
    """A run folder that does not fit: a bad value of the option that named it."""
    from training.runs import RunMismatch

    try:
        yield
    except RunMismatch as error:
        raise typer.BadParameter(str(error), param_hint=error.option) from error


@app.command()
def features(
    data_dir: DataDir,
    weights: Weights,
    cache: CacheDir = Path("cache"),
    train_views: Annotated[
        int, typer.Option(help="Shifted (with --framing: framed) copies of each training image")
    ] = 3,
    val_views: Annotated[int, typer.Option(help="Shifted copies of each validation image (hard set)")] = 2,
    framing: Annotated[bool, typer.Option(help="Train on framed views only (no class information in the "
                                               "proportions); add the shortcut-balanced validation views")] = False,
    val_fraction: float = 0.15,
    seed: Seed = 7,
    zoom_range: Annotated[
        tuple[float, float] | None,
        typer.Option(help="Zoom range of the framed training views (default 0.87 1.2, version 5's recipe)"),
    ] = None,
    zoom_views: Annotated[bool, typer.Option(help="Add the zoomed validation views (zoomin, zoomout) to the "
                                                  "hard set")] = False,
) -> None:
    """Split train/ by patient and cache the lower backbone's activations of clean, shifted, framed,
    shortcut-balanced and zoomed views."""
    _logging()
    from training.features import cache_views

    cache_views(data_dir, weights, cache, train_views, val_views, framing, val_fraction, seed, zoom_range, zoom_views)


RunDir = Annotated[Path, typer.Option(help="Training run folder: head weights and training.json")]
ModelRoot = Annotated[Path, typer.Option("--model", help="Model root: <version>/saved_model.pb")]


@app.command()
def train(
    weights: Weights,
    cache: CacheDir = Path("cache"),
    run_dir: RunDir = Path("runs/latest"),
    seed: Seed = 7,
    epochs: Annotated[int, typer.Option(help="Epochs of head training on frozen features")] = 30,
    fine_tune_epochs: Annotated[int, typer.Option(help="Epochs of top-block fine-tuning (best kept)")] = 3,
    fine_tune_lr: Annotated[float, typer.Option(help="Learning rate of top-block fine-tuning")] = 1e-4,
    pooling: Annotated[str, typer.Option(help="Cells of the top block's grid the heads read: whole (every "
                                              "cell) or inner (the outermost ring left out)")] = "whole",
) -> None:
    """Fit the head on frozen features, fine-tune the top block with it; choose the head and the
    epoch on validation (single view), the thresholds on validation scored as the exported model
    scores (averaged over the test-time transforms)."""
    _logging()
    from training.fine_tune import FineTuneConfig
    from training.graph import POOLINGS
    from training.train import train_run

    if pooling not in POOLINGS:
        raise typer.BadParameter(f"{pooling!r} is not one of {', '.join(POOLINGS)}", param_hint="--pooling")
    tuning = FineTuneConfig(epochs=fine_tune_epochs, learning_rate=fine_tune_lr, pooling=pooling)
    summary = train_run(weights, cache, run_dir, seed, epochs, tuning)
    for name, point in summary.operating_points.items():
        typer.echo(f"{name}: threshold {point.threshold:.4f} {point.validation}")


@app.command()
def ensemble(
    weights: Weights,
    member: Annotated[list[Path], typer.Option(help="A `train` run folder; repeat for each member")],
    cache: CacheDir = Path("cache"),
    run_dir: RunDir = Path("runs/ensemble"),
    storage: Annotated[str, typer.Option(help="How `export` stores the members' weights: float32, or float16 "
                                          "for half their size (rounded before scoring; computed in float32)")]
    = "float32",
) -> None:
    """Average `train` runs on logits; choose the operating points on validation scored as the
    exported ensemble scores (test-time transforms and members averaged)."""
    _logging()
    from training.ensemble import ensemble_run
    from training.storage import STORAGES, WeightStorage

    if storage not in STORAGES:
        raise typer.BadParameter(f"{storage!r} is not one of {', '.join(STORAGES)}", param_hint="--storage")
    with _run_mismatch():
        validation = ensemble_run(weights, member, cache, run_dir, cast(WeightStorage, storage))
    typer.echo(json.dumps({"validation_auc": validation["validation_auc"]}, indent=1))
    for name, point in validation["operating_points"].items():
        typer.echo(f"{name}: threshold {point['threshold']:.4f} {point['validation']}")


@app.command()
def export(
    weights: Weights,
    run_dir: RunDir = Path("runs/latest"),
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Version number; default: next free")] = None,
) -> None:
    """Export a `train` or `ensemble` run (backbone, top blocks, heads) as a versioned SavedModel with
    its metadata."""
    _logging()
    from training.export import export_run

    with _run_mismatch():
        target = export_run(run_dir, weights, model, version)
    typer.echo(str(target))


@app.command("rebuild-run")
def rebuild_run(
    weights: Weights,
    version: Annotated[int, typer.Option(help="Version of the exported model to rebuild")],
    out_dir: Annotated[Path, typer.Option(help="Gets one run folder per member, seed<N>")],
    model: ModelRoot = Path("models/pneumonia"),
) -> None:
    """Rebuild `train` run folders, one per member, from an exported SavedModel, so that its members
    can join an ensemble without being retrained; exits 1 unless the rebuilt runs, exported again,
    score as the SavedModel."""
    _logging()
    from radiograph.savedmodel import LoadedModel
    from training.rebuild import rebuild_runs, rescore

    shipped = LoadedModel.from_dir(model, version)
    run_dirs = rebuild_runs(shipped, weights, out_dir)
    for path in run_dirs:
        typer.echo(str(path))
    scores = rescore(run_dirs, weights, shipped)
    typer.echo(f"rebuilt vs shipped probabilities: max |difference| {scores.max_difference:.2e}")
    if not scores.agrees:
        typer.echo(f"rebuilt runs score differently: {scores.rebuilt} vs {scores.shipped}", err=True)
        raise typer.Exit(1)


RuntimeOption = Annotated[Literal["auto", "tensorflow", "openvino"], typer.Option(
    help="What runs the model, as the gateway's GATEWAY_INFERENCE_RUNTIME: auto is OpenVINO where installed")]
PrecisionOption = Annotated[Literal["auto", "float32", "bfloat16"], typer.Option(
    help="Numeric precision, as GATEWAY_INFERENCE_PRECISION: auto is the fastest validated one on this CPU")]
OpenVinoCache = Annotated[Path | None, typer.Option(
    help="Converted OpenVINO models, as GATEWAY_OPENVINO_CACHE_DIR (default ~/.cache/pneumonia-openvino)")]


@contextmanager
def _runtime_refused() -> Iterator[None]:
    """A runtime or precision that cannot score the model here: a bad value of those options."""
    from radiograph.runtime import RuntimeRefused

    try:
        yield
    except RuntimeRefused as error:
        raise typer.BadParameter(str(error), param_hint="--runtime/--precision") from error


@app.command()
def evaluate(
    data_dir: DataDir,
    split: Annotated[str, typer.Option(help='Folder under --data-dir, or "val" (patient-grouped part of train/)')],
    model: ModelRoot = Path("models/pneumonia"),
    out: Annotated[Path, typer.Option(help="Report folder (metrics.json, PNGs)")] = Path("reports/eval"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
    operating_point: Annotated[str | None, typer.Option(help="Headline operating point")] = None,
    shift_strength: Annotated[float, typer.Option(help="Score seeded shifted copies (0: as is)")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the shifted copies")] = 0,
    swap_proportions: Annotated[bool, typer.Option(
        help="Shortcut-balanced view: give each picture the proportions of the other class's originals "
        "(before any shift)")] = False,
    runtime: RuntimeOption = "auto",
    precision: PrecisionOption = "auto",
    openvino_cache: OpenVinoCache = None,
) -> None:
    """Score an exported SavedModel on a split; write metrics.json and figures to --out. It scores with the
    runtime and precision the gateway serves with the same settings (defaults alike)."""
    _logging()
    from radiograph.runtime import DEFAULT_CACHE_DIR, open_scoring
    from radiograph.savedmodel import LoadedModel
    from training.evaluate import evaluate as run_evaluation
    from training.evaluate import examples_for

    loaded = LoadedModel.from_dir(model, version)
    with _runtime_refused():
        scoring = open_scoring(loaded, runtime, precision, openvino_cache or DEFAULT_CACHE_DIR)
    typer.echo(f"scoring with {scoring.runtime} {scoring.precision}", err=True)
    examples = examples_for(data_dir, split, loaded)
    report = run_evaluation(scoring.model, examples, out, operating_point, shift_strength, seed, split,
                            swap_proportions, scored_by=f"{scoring.runtime} {scoring.precision}")
    keys = ("n", "auc", "operating_point", "threshold", "sensitivity", "specificity", "accuracy", "scored_by",
            "seconds")
    typer.echo(json.dumps({key: report[key] for key in keys}, indent=1))


@app.command("drift-reference")
def drift_reference(
    data_dir: DataDir,
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
) -> None:
    """Write the model's drift reference (validation traits and scores, quantile-binned) to
    <version>/assets.extra/drift_reference.json, where the gateway reads it."""
    _logging()
    from radiograph.contract import PROBABILITY_OUTPUT
    from radiograph.savedmodel import LoadedModel
    from training.data import load_pixels
    from training.drift_reference import write_drift_reference
    from training.evaluate import examples_for, score

    loaded = LoadedModel.from_dir(model, version)
    pixels = load_pixels(examples_for(data_dir, "val", loaded), loaded.metadata.input_height)
    typer.echo(str(write_drift_reference(loaded, pixels, score(loaded, pixels)[PROBABILITY_OUTPUT])))


@app.command("precision-points")
def precision_points(
    data_dir: DataDir,
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
    openvino_cache: OpenVinoCache = None,
) -> None:
    """Score the validation split in every precision this CPU computes natively and write the figures at the
    model's thresholds to <version>/assets.extra/precision_points.json: the gateway serves a precision other
    than float32 only with them, and only when it keeps the screening sensitivity target."""
    _logging()
    from radiograph.runtime import DEFAULT_CACHE_DIR
    from radiograph.savedmodel import LoadedModel
    from training.precision_points import validation_points

    loaded = LoadedModel.from_dir(model, version)
    points = validation_points(loaded, data_dir, openvino_cache or DEFAULT_CACHE_DIR)
    typer.echo(str(points.write(loaded.path)))
    typer.echo(points.model_dump_json(indent=1))


@app.command()
def audit(
    data_dir: DataDir,
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
    out: Annotated[Path, typer.Option(help="Report root: writes <out>/v<version>/audit.{json,md}")] = Path(
        "reports/audit"),
    per_class: Annotated[int, typer.Option(help="Validation pictures of each class")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the sample")] = 0,
) -> None:
    """Shortcut audit on validation pictures: ΔP and label flips under acquisition changes, and P's
    correlation with class-correlated acquisition traits."""
    _logging()
    from radiograph.savedmodel import LoadedModel
    from training import audit as shortcut_audit
    from training.evaluate import VALIDATION, examples_for

    loaded = LoadedModel.from_dir(model, version)
    examples = shortcut_audit.sample(examples_for(data_dir, VALIDATION, loaded), per_class, seed)
    report = shortcut_audit.run(loaded, examples)
    target = out / f"v{loaded.version}"
    shortcut_audit.write(report, target)
    typer.echo((target / "audit.md").read_text())


@app.command("error-review")
def error_review(
    data_dir: DataDir,
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
    out: Annotated[Path, typer.Option(help="Report root: writes <out>/v<version>/errors.json, contact sheets")] = Path(
        "reports/errors"),
) -> None:
    """Where the heatmap puts the evidence for the validation pictures misread at `screening` (false
    positives, false negatives), against the correctly read ones: evidence outside the lung fields means
    the model learnt the framing or the equipment."""
    _logging()
    from radiograph.savedmodel import LoadedModel
    from training.error_review import review

    loaded = LoadedModel.from_dir(model, version)
    report = review(loaded, data_dir, out / f"v{loaded.version}")
    typer.echo(json.dumps(report, indent=1))


@app.command("resize-check")
def resize_check(
    data_dir: DataDir,
    model: ModelRoot = Path("models/pneumonia"),
    version: Annotated[int | None, typer.Option(help="Model version; default: newest")] = None,
    limit: Annotated[int, typer.Option(help="Use N validation images, evenly spaced (0: all)")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the enlarged sizes")] = 5,
) -> None:
    """How the model scores validation pictures enlarged to a radiograph's size, resized back by the
    gateway's path (with the training set's JPEG compression) and without it; then the full-resolution
    originals by both paths."""
    _logging()
    from radiograph.savedmodel import LoadedModel
    from training.resize_check import resize_check as report

    for line in report(LoadedModel.from_dir(model, version), data_dir, limit, seed):
        typer.echo(line)
