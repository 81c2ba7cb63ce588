"""The framed recipe end to end on a few dozen real images with a tiny backbone: framed training views
and shortcut-balanced validation views are cached, a stopped training run resumes from its
checkpoint, and the exported model is evaluated on the shortcut-balanced view and audited."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from radiograph.contract import PROBABILITY_OUTPUT
from radiograph.savedmodel import LoadedModel
from tests.training.cli_runs import run, small_copy
from training.audit import CHANGES, OTHER_PROPORTIONS, sample
from training.data import labels_of, load_pixels
from training.evaluate import VALIDATION, examples_for, score
from training.framing import swapped_copies

PER_CLASS = 16


@pytest.fixture(scope="module")
def small_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_copy(data_dir, tmp_path_factory.mktemp("data"), PER_CLASS)


@pytest.fixture(scope="module")
def trained(small_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("framed")
    paths = {"cache": root / "cache", "run": root / "run", "models": root / "models"}
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(paths["cache"]),
        "--framing", "--train-views", "2", "--val-views", "1", "--val-fraction", "0.3")
    run("train", "--weights", "tiny", "--cache", str(paths["cache"]), "--run-dir", str(paths["run"]),
        "--epochs", "2", "--fine-tune-epochs", "1")
    return paths


def test_framing_caches_framed_training_and_shortcut_balanced_validation_views(trained: dict[str, Path]) -> None:
    assert {p.name for p in trained["cache"].glob("grid_*.npy")} == {
        "grid_train_frame0.npy", "grid_train_frame1.npy",
        "grid_val_clean.npy", "grid_val_shift0.npy", "grid_val_swap.npy", "grid_val_swapshift0.npy",
    }
    assert not list(trained["cache"].glob("partial-*"))
    summary = json.loads((trained["run"] / "training.json").read_text())
    assert summary["selection"]["train_views"] == ["train_frame0", "train_frame1"]  # no clean training view
    # screening keeps sensitivity >= 0.98 on every validation view, the shortcut-balanced ones included
    figures = summary["operating_points"]["screening"]["validation"]
    assert {f"{view}_sensitivity" for view in ("clean", "shift0", "swap", "swapshift0")} <= set(figures)
    assert min(figures[f"{view}_sensitivity"] for view in ("clean", "shift0", "swap", "swapshift0")) >= 0.98
    # whether test-time averaging pays is recorded per view, single view against averaged
    averaging = summary["test_time_averaging"]
    assert set(averaging) == {"clean", "shift0", "swap", "swapshift0"}
    assert all(set(figures) == {"single_view", "averaged"} for figures in averaging.values())


def test_a_resumed_run_keeps_its_finished_epochs(trained: dict[str, Path]) -> None:
    first = json.loads((trained["run"] / "training.json").read_text())
    run("train", "--weights", "tiny", "--cache", str(trained["cache"]), "--run-dir", str(trained["run"]),
        "--epochs", "2", "--fine-tune-epochs", "2")
    resumed = json.loads((trained["run"] / "training.json").read_text())
    assert resumed["head"] == first["head"] and resumed["selection"] == first["selection"]
    history = resumed["fine_tuning"]["history"]
    assert len(history) == 3 and history[:2] == first["fine_tuning"]["history"]  # epochs 0–1 not redone


def test_swapped_evaluation_and_audit_of_the_export(trained: dict[str, Path], small_data: Path, tmp_path: Path) -> None:
    run("export", "--weights", "tiny", "--run-dir", str(trained["run"]), "--model", str(trained["models"]))
    model = LoadedModel.from_dir(trained["models"])
    examples = examples_for(small_data, VALIDATION, model)
    pixels, y = load_pixels(examples, 224), labels_of(examples)
    swapped_p = score(model, swapped_copies(pixels, y))[PROBABILITY_OUTPUT]

    run("evaluate", "--data-dir", str(small_data), "--split", "val", "--model", str(trained["models"]),
        "--out", str(tmp_path / "swap"), "--swap-proportions")
    metrics = json.loads((tmp_path / "swap" / "metrics.json").read_text())
    assert metrics["swap_proportions"] is True and metrics["n"] == len(examples)
    rows = (tmp_path / "swap" / "predictions.csv").read_text().splitlines()[1:]
    np.testing.assert_allclose([float(r.split(",")[2]) for r in rows], swapped_p, atol=1e-5)

    out = run("audit", "--data-dir", str(small_data), "--model", str(trained["models"]), "--out",
              str(tmp_path / "audit"), "--per-class", "4")
    report = json.loads((tmp_path / "audit" / "v1" / "audit.json").read_text())
    assert list(report["changes"]) == [OTHER_PROPORTIONS, *CHANGES]
    assert "| vertical stretch 15% |" in out
    # the audit's ΔP under the other class's proportions is the model's own score difference
    before = score(model, pixels)[PROBABILITY_OUTPUT]
    audited = {e.path for e in sample(examples, 4, seed=0)}
    normal = [i for i, e in enumerate(examples) if e.path in audited and y[i] == 0]
    assert len(normal) == report["n_per_class"]["NORMAL"] > 0
    expected = float(np.mean(swapped_p[normal] - before[normal]))
    assert report["changes"][OTHER_PROPORTIONS]["NORMAL"]["mean_dp"] == pytest.approx(expected, abs=1e-5)

    # the error review reads the misread pictures at the screening threshold, with their heatmaps
    run("error-review", "--data-dir", str(small_data), "--model", str(trained["models"]), "--out",
        str(tmp_path / "errors"))
    errors = json.loads((tmp_path / "errors" / "v1" / "errors.json").read_text())
    threshold = model.metadata.operating_points["screening"].threshold
    assert errors["false_positive"]["pictures"] == int(np.sum((before >= threshold) & (y == 0)))
    assert errors["false_negative"]["pictures"] == int(np.sum((before < threshold) & (y == 1)))
    assert sum(errors[g]["pictures"] for g in errors if g.endswith(("positive", "negative"))) == len(examples)
    assert (tmp_path / "errors" / "v1" / "false_positive.png").stat().st_size > 0


def test_inner_pooling_reads_no_outer_cell(trained: dict[str, Path], small_data: Path, tmp_path: Path) -> None:
    from training.runs import pooling_of, read_summary

    run_dir, models = tmp_path / "inner", tmp_path / "models"
    run("train", "--weights", "tiny", "--cache", str(trained["cache"]), "--run-dir", str(run_dir),
        "--epochs", "2", "--fine-tune-epochs", "1", "--pooling", "inner")
    assert pooling_of(read_summary(run_dir)) == "inner"
    run("export", "--weights", "tiny", "--run-dir", str(run_dir), "--model", str(models))
    model = LoadedModel.from_dir(models)
    examples = examples_for(small_data, VALIDATION, model)
    heat = model.run("explain", load_pixels(examples, 224)[:, :, :, None])["heatmap"]
    ring = np.concatenate([heat[:, 0, :], heat[:, -1, :], heat[:, :, 0], heat[:, :, -1]], axis=1)
    assert heat.max() > 0 and ring.max() == 0  # the map shows only the cells the score reads
    # the pooling travels with the member: its runs rebuilt from the export score as the export does
    run("rebuild-run", "--weights", "tiny", "--version", "1", "--model", str(models), "--out-dir",
        str(tmp_path / "rebuilt"))
    assert pooling_of(read_summary(next((tmp_path / "rebuilt").iterdir()))) == "inner"
