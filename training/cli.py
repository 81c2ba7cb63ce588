"""`python -m training features | train | export | evaluate`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)

DataDir = Annotated[Path, typer.Option(help="Folder in the public layout: <split>/{NORMAL,PNEUMONIA}/*.jpeg")]
CacheDir = Annotated[Path, typer.Option(help="Where decoded pixels and backbone features are cached")]
Weights = Annotated[str, typer.Option(help='Xception no-top weights: an .h5 path, or "imagenet"')]
Seed = Annotated[int, typer.Option(help="Seed for the split, augmentation and head training")]

INPUT_SIZE = 224


@app.callback()
def main() -> None:
    """Train, export and evaluate the pneumonia model."""


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


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
) -> None:
    """Split train/ by patient and cache the lower backbone's activations of clean, shifted, framed and
    shortcut-balanced views."""
    _logging()
    from training.features import cache_grids, prepare_split
    from training.graph import TTA_TRANSFORMS, BottomExtractor, build_backbone, split_backbone

    prepare_split(data_dir, cache, INPUT_SIZE, val_fraction, seed)
    bottom, _ = split_backbone(build_backbone(INPUT_SIZE, weights))
    extractor = BottomExtractor(bottom)
    val = [("val", "clean", 1.0)] + [("val", f"shift{k}", 1.5) for k in range(val_views)]
    if framing:
        val += [("val", "swap", 1.0)] + [("val", f"swapshift{k}", 1.5) for k in range(val_views)]
        train = [("train", f"frame{k}", 1.0) for k in range(train_views)]
    else:
        train = [("train", "clean", 1.0)] + [("train", f"shift{k}", 1.0) for k in range(train_views)]
    jobs = [(*job, transform) for job in val for transform in TTA_TRANSFORMS]
    jobs += [(*job, "identity") for job in train]
    for part, view, strength, transform in jobs:
        cache_grids(extractor, cache, part, view, strength, seed, transform)


RunDir = Annotated[Path, typer.Option(help="Training run folder: head weights and training.json")]
ModelRoot = Annotated[Path, typer.Option("--model", help="Model root: <version>/saved_model.pb")]
L2_GRID = (1e-5, 1e-4, 1e-3)


@app.command()
def train(
    weights: Weights,
    cache: CacheDir = Path("cache"),
    run_dir: RunDir = Path("runs/latest"),
    seed: Seed = 7,
    epochs: Annotated[int, typer.Option(help="Epochs of head training on frozen features")] = 30,
    fine_tune_epochs: Annotated[int, typer.Option(help="Epochs of top-block fine-tuning (best kept)")] = 3,
    fine_tune_lr: Annotated[float, typer.Option(help="Learning rate of top-block fine-tuning")] = 1e-4,
) -> None:
    """Fit the head on frozen features, fine-tune the top block with it; choose the head and the
    epoch on validation (single view), the thresholds on validation scored as the exported model
    scores (averaged over the test-time transforms)."""
    _logging()
    import numpy as np

    from training.data import labels_of
    from training.features import load_grids, load_split, load_tta_grids
    from training.graph import TTA_TRANSFORMS, averaged_features, build_backbone, pooled_features, split_backbone
    from training.train import (
        FineTuneConfig,
        HeadConfig,
        fine_tune,
        fit_subtype_head,
        operating_points,
        probabilities,
        save_run,
        select_and_fit,
        subtype_report,
        subtype_targets,
    )

    split = load_split(cache)
    grids = load_grids(cache)
    _, top = split_backbone(build_backbone(INPUT_SIZE, weights))
    features = {key: pooled_features(top, grid) for key, grid in grids.items()}
    head_grid = [HeadConfig(l2=l2, epochs=epochs) for l2 in L2_GRID]
    checkpoint = run_dir / "checkpoint"
    head, config, selection = select_and_fit(features, split, head_grid, seed, checkpoint)
    y_val = labels_of(split["val"])
    tuning = fine_tune(
        top,
        head,
        ([grids[k] for k in selection["train_views"]], labels_of(split["train"])),  # type: ignore[union-attr]
        ({k.removeprefix("val_"): grids[k] for k in selection["val_views"]}, y_val),  # type: ignore[union-attr]
        FineTuneConfig(epochs=fine_tune_epochs, learning_rate=fine_tune_lr),
        seed,
        checkpoint,
    )
    train_keys = selection["train_views"]  # type: ignore[index]
    if tuning["best_epoch"]:  # the top block changed: the subtype head needs its new training features
        features = {key: pooled_features(top, grids[key]) for key in train_keys}
    val_features = {
        key.removeprefix("val_"): averaged_features(top, load_tta_grids(cache, key))
        for key in selection["val_views"]  # type: ignore[union-attr]
    }
    points = operating_points({name: (y_val, probabilities(head, x)) for name, x in val_features.items()})
    subtypes_train = subtype_targets(split["train"])
    subtype_head = fit_subtype_head(
        np.concatenate([features[k] for k in train_keys]),
        np.concatenate([subtypes_train for _ in train_keys]),
        config.l2,
        epochs,
        seed,
    )
    subtypes_val = subtype_targets(split["val"])
    subtype_validation = {
        name: subtype_report(subtype_head.predict(x, verbose=0), subtypes_val) for name, x in val_features.items()
    }
    split_settings = json.loads((cache / "split_settings.json").read_text())
    summary = {
        "seed": seed,
        "head": vars(config),
        "selection": selection,
        "fine_tuning": tuning,
        "test_time_transforms": list(TTA_TRANSFORMS),
        "split": split_settings,
        "operating_points": {name: point.model_dump() for name, point in points.items()},
        "subtype_validation": subtype_validation,
    }
    save_run(run_dir, top, head, subtype_head, summary)
    for name, point in points.items():
        typer.echo(f"{name}: threshold {point.threshold:.4f} {point.validation}")


@app.command()
def ensemble(
    weights: Weights,
    member: Annotated[list[Path], typer.Option(help="A `train` run folder; repeat for each member")],
    cache: CacheDir = Path("cache"),
    run_dir: RunDir = Path("runs/ensemble"),
) -> None:
    """Average `train` runs on logits; choose the operating points on validation scored as the
    exported ensemble scores (test-time transforms and members averaged)."""
    _logging()
    from training.data import labels_of
    from training.ensemble import member_logits, validation_summary, write_ensemble
    from training.features import load_split, load_tta_grids, view_keys
    from training.train import load_members, subtype_targets

    split = load_split(cache)
    val_keys = view_keys(cache, "val")
    for path in member:  # the views a member was selected on (rebuilt runs do not record them)
        recorded = json.loads((path / "training.json").read_text()).get("selection", {}).get("val_views")
        if recorded is not None and recorded != val_keys:
            raise typer.BadParameter(f"{path} was selected on {recorded}, the cache holds {val_keys}",
                                     param_hint="--member")
    grids = {key.removeprefix("val_"): load_tta_grids(cache, key) for key in val_keys}
    _, loaded = load_members(member, weights, INPUT_SIZE)
    logits = {
        path.name: {view: member_logits(m, g) for view, g in grids.items()}
        for path, m in zip(member, loaded, strict=True)
    }
    validation = validation_summary(logits, labels_of(split["val"]), subtype_targets(split["val"]))
    write_ensemble(run_dir, member, validation)
    typer.echo(json.dumps({"validation_auc": validation["validation_auc"]}, indent=1))
    for name, point in validation["operating_points"].items():  # type: ignore[attr-defined]
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
    from radiograph.contract import ModelMetadata, OperatingPoint
    from training.data import SUBTYPES
    from training.export import export as export_model
    from training.graph import TTA_TRANSFORMS
    from training.train import load_run, member_dirs

    summary = json.loads((run_dir / "training.json").read_text())
    if summary.get("test_time_transforms") != list(TTA_TRANSFORMS):
        raise typer.BadParameter(
            f"{run_dir}: thresholds were chosen for test-time transforms {summary.get('test_time_transforms')}, "
            f"the exported graph averages {list(TTA_TRANSFORMS)}; re-run train",
            param_hint="--run-dir",
        )
    members = [json.loads((path / "training.json").read_text()) for path in member_dirs(run_dir)]
    epochs = "/".join(str(m["fine_tuning"]["best_epoch"]) for m in members)
    train_views = [k for m in members for k in m.get("selection", {}).get("train_views", [])]
    framed = bool(train_views) and all(k.startswith("train_frame") for k in train_views)
    views = (
        "framed views (the anatomy's proportions drawn alike for both classes, zoom and crop) with acquisition "
        "shifts" if framed else "clean and shift-augmented views"
    )
    metadata = ModelMetadata(
        labels=("NORMAL", "PNEUMONIA"),
        input_height=INPUT_SIZE,
        input_width=INPUT_SIZE,
        operating_points={
            name: OperatingPoint(**point) for name, point in summary["operating_points"].items()
        },
        subtype_labels=SUBTYPES,
        description=f"ImageNet Xception on histogram-equalised input; {len(members)} member(s) (seeds), each "
        f"a top block fine-tuned for {epochs} epoch(s) with a logistic head on {views} of the Kermany "
        "pediatric train/ split; scores averaged over the members and over the image as sent, mirrored, and "
        "its central 90% enlarged.",
        training={
            "backbone": "xception" if weights != "tiny" else "tiny",
            "split": summary["split"],
            "members": [
                {
                    "seed": m["seed"],
                    "head": m["head"],
                    "fine_tuning": {k: v for k, v in m["fine_tuning"].items() if k != "history"},
                }
                for m in members
            ],
            "test_time_transforms": list(TTA_TRANSFORMS),
        },
    )
    run = load_run(run_dir, weights, INPUT_SIZE)
    target = export_model(run.bottom, run.members, metadata, model, version)
    typer.echo(str(target))


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
) -> None:
    """Score an exported SavedModel on a split; write metrics.json and figures to --out."""
    _logging()
    from radiograph.savedmodel import LoadedModel
    from training.evaluate import evaluate as run_evaluation
    from training.evaluate import examples_for

    loaded = LoadedModel.from_dir(model, version)
    examples = examples_for(data_dir, split, loaded)
    report = run_evaluation(loaded, examples, out, operating_point, shift_strength, seed, split, swap_proportions)
    keys = ("n", "auc", "operating_point", "threshold", "sensitivity", "specificity", "accuracy", "seconds")
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
