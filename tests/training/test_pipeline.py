"""Smoke test of the whole training CLI on a few dozen real images with a tiny backbone:
features → train → export → evaluate, and the exported SavedModel honours the contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from localserving.signatures import warmup_requests
from radiograph.contract import EXPLAIN_SIGNATURE, HEATMAP_OUTPUT
from radiograph.savedmodel import LoadedModel
from tests.training.cli_runs import run, small_copy
from training.cli import app

PER_CLASS = 18


@pytest.fixture(scope="module")
def small_data(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_copy(data_dir, tmp_path_factory.mktemp("data"), PER_CLASS)


def test_train_export_evaluate(small_data: Path, tmp_path: Path) -> None:
    cache, run_dir, models, report = tmp_path / "cache", tmp_path / "run", tmp_path / "models", tmp_path / "report"
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(cache),
        "--train-views", "1", "--val-views", "1", "--val-fraction", "0.3")
    assert {p.name for p in cache.glob("grid_*.npy")} == {
        "grid_train_clean.npy", "grid_train_shift0.npy", "grid_val_clean.npy", "grid_val_shift0.npy"
    }
    assert {p.name for p in cache.glob("tta_*.npy")} == {  # validation under the test-time transforms
        f"tta_val_{view}_{transform}.npy" for view in ("clean", "shift0") for transform in ("flip", "zoom90")
    }
    run("train", "--weights", "tiny", "--cache", str(cache), "--run-dir", str(run_dir), "--epochs", "2",
        "--fine-tune-epochs", "2")
    tuning = json.loads((run_dir / "training.json").read_text())["fine_tuning"]
    assert len(tuning["history"]) == 3 and tuning["best_epoch"] in (0, 1, 2)
    run("export", "--weights", "tiny", "--run-dir", str(run_dir), "--model", str(models))
    assert (models / "1" / "saved_model.pb").is_file()
    warmups = [(r.model_spec.signature_name, r.inputs["image"].tensor_shape.dim[0].size)
               for r in warmup_requests(models / "1")]
    assert warmups == [("serving_default", 1), ("serving_default", 8), ("explain", 1)]

    model = LoadedModel.from_dir(models)
    spec = model.signatures["serving_default"].inputs["image"]
    assert spec.dtype.name == "uint8" and spec.shape.as_list() == [None, 224, 224, 1]
    assert model.metadata.labels == ("NORMAL", "PNEUMONIA")
    assert set(model.metadata.operating_points) == {"screening", "balanced"}
    images = np.asarray(np.random.default_rng(1).integers(0, 256, (3, 224, 224, 1)), np.uint8)
    probabilities = model.predict(images)
    assert probabilities.shape == (3,)
    # each image is scored on its own: its batch neighbours do not change its score
    np.testing.assert_allclose(model.predict(images[1:2]), probabilities[1:2], atol=1e-5)

    run("evaluate", "--data-dir", str(small_data), "--split", "val", "--model", str(models), "--out", str(report))
    metrics = json.loads((report / "metrics.json").read_text())
    assert {"auc", "accuracy", "sensitivity", "specificity", "threshold", "operating_point", "n"} <= set(metrics)
    assert metrics["n"] > 0 and metrics["operating_point"] == "screening"
    assert (report / "confusion_screening.png").stat().st_size > 1000
    # train chose the thresholds on cached activations averaged over the test-time transforms; the
    # exported graph averages the same transforms itself, so its validation figures are train's
    chosen = json.loads((run_dir / "training.json").read_text())["operating_points"]
    for name, point in chosen.items():
        for key in ("sensitivity", "specificity"):
            assert metrics["operating_points"][name][key] == pytest.approx(point["validation"][f"clean_{key}"])

    # validation pictures enlarged to a radiograph's size and the full-resolution originals, by both decode paths
    output = run("resize-check", "--data-dir", str(small_data), "--model", str(models), "--limit", "4")
    assert "model version 1, 4 validation images" in output
    n_originals = len(list((small_data / "fullres_samples").glob("*/*.jpeg")))
    for path in ("gateway (resized + JPEG q75)", "resized only"):
        assert f"enlarged, {path}: AUC" in output
        assert f"{n_originals} full-resolution originals, {path}: NORMAL" in output


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p / (1.0 - p))


def test_ensemble_averages_members_on_logits(small_data: Path, tmp_path: Path) -> None:
    cache, models = tmp_path / "cache", tmp_path / "models"
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(cache),
        "--train-views", "0", "--val-views", "1", "--val-fraction", "0.3")
    members = [tmp_path / f"seed{seed}" for seed in (1, 2)]
    for seed, member in zip((1, 2), members, strict=True):
        run("train", "--weights", "tiny", "--cache", str(cache), "--run-dir", str(member), "--epochs", "2",
            "--fine-tune-epochs", "1", "--seed", str(seed))
        run("export", "--weights", "tiny", "--run-dir", str(member), "--model", str(models))
    ensemble = tmp_path / "ensemble"
    run("ensemble", "--weights", "tiny", "--cache", str(cache), "--member", str(members[0]),
        "--member", str(members[1]), "--run-dir", str(ensemble))
    run("export", "--weights", "tiny", "--run-dir", str(ensemble), "--model", str(models))

    images = np.asarray(np.random.default_rng(0).integers(0, 256, (6, 224, 224, 1)), np.uint8)
    alone = [LoadedModel.from_dir(models, version).predict(images) for version in (1, 2)]
    together = LoadedModel.from_dir(models, 3)
    assert not np.allclose(alone[0], alone[1], atol=1e-3)  # the seeds gave different members
    np.testing.assert_allclose(logit(together.predict(images)), (logit(alone[0]) + logit(alone[1])) / 2, atol=1e-4)
    assert [m["seed"] for m in together.metadata.training["members"]] == [1, 2]

    # the ensemble's operating points were chosen on cached activations scored as the exported
    # graph scores: its validation figures are the ones `ensemble` recorded
    report = tmp_path / "report"
    run("evaluate", "--data-dir", str(small_data), "--split", "val", "--model", str(models), "--out", str(report))
    metrics = json.loads((report / "metrics.json").read_text())
    chosen = json.loads((ensemble / "training.json").read_text())["operating_points"]
    for name, point in chosen.items():
        for key in ("sensitivity", "specificity"):
            assert metrics["operating_points"][name][key] == pytest.approx(point["validation"][f"clean_{key}"])

    # an exported ensemble's members can be rebuilt as runs, and together they score as it does
    rebuilt = rebuild_runs(models, 3, tmp_path / "rebuilt")
    assert [path.name for path in rebuilt] == ["seed1", "seed2"]
    for original, copy in zip(members, rebuilt, strict=True):
        assert json.loads((copy / "training.json").read_text())["head"] == (
            json.loads((original / "training.json").read_text())["head"])


def rebuild_runs(models: Path, version: int, out_dir: Path) -> list[Path]:
    """`rebuild-run`; it exits 1 if the rebuilt runs, exported again, score otherwise."""
    output = run("rebuild-run", "--weights", "tiny", "--model", str(models), "--version", str(version),
                 "--out-dir", str(out_dir))
    assert "rebuilt vs shipped probabilities: max |difference|" in output
    return [Path(line) for line in output.splitlines() if line.startswith(str(out_dir))]


def test_rebuilt_runs_of_members_sharing_a_seed_get_distinct_folders() -> None:
    from training.rebuild import run_names

    assert run_names([1, 2]) == ["seed1", "seed2"]
    assert run_names([7, 7, 8]) == ["member1-seed7", "member2-seed7", "member3-seed8"]


def test_run_rebuilt_from_an_exported_model_is_the_same_member(small_data: Path, tmp_path: Path) -> None:
    """`rebuild-run`: how a shipped single-member model becomes an ensemble member."""
    cache, run_dir, models, rebuilt = tmp_path / "cache", tmp_path / "run", tmp_path / "models", tmp_path / "rebuilt"
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(cache),
        "--train-views", "0", "--val-views", "1", "--val-fraction", "0.3")
    run("train", "--weights", "tiny", "--cache", str(cache), "--run-dir", str(run_dir), "--epochs", "2",
        "--fine-tune-epochs", "1")
    run("export", "--weights", "tiny", "--run-dir", str(run_dir), "--model", str(models))
    assert rebuild_runs(models, 1, rebuilt) == [rebuilt / "seed7"]
    # an ensemble of the rebuilt run alone chooses the original run's operating points from the cache
    run("ensemble", "--weights", "tiny", "--cache", str(cache), "--member", str(rebuilt / "seed7"),
        "--run-dir", str(tmp_path / "ensemble"))
    original = json.loads((run_dir / "training.json").read_text())["operating_points"]
    chosen = json.loads((tmp_path / "ensemble" / "training.json").read_text())["operating_points"]
    assert {k: p["threshold"] for k, p in chosen.items()} == {k: p["threshold"] for k, p in original.items()}


def test_second_export_gets_next_version(small_data: Path, tmp_path: Path) -> None:
    cache, run_dir, models = tmp_path / "cache", tmp_path / "run", tmp_path / "models"
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(cache),
        "--train-views", "0", "--val-views", "0", "--val-fraction", "0.3")
    run("train", "--weights", "tiny", "--cache", str(cache), "--run-dir", str(run_dir), "--epochs", "1",
        "--fine-tune-epochs", "0")
    for _ in range(2):
        run("export", "--weights", "tiny", "--run-dir", str(run_dir), "--model", str(models))
    assert sorted(p.name for p in models.iterdir()) == ["1", "2"]
    assert LoadedModel.from_dir(models).version == 2


def test_float16_storage_halves_the_members_and_scores_as_the_ensemble_chose(small_data: Path, tmp_path: Path) -> None:
    """`ensemble --storage float16`: the members' weights are rounded before scoring and `export` stores them as
    float16 (the frozen bottom stays float32); the export computes in float32 and scores exactly as the ensemble
    recorded, within float16 rounding of the float32 export, and `rebuild-run` reads such a model back."""
    import tensorflow as tf

    cache, member, models = tmp_path / "cache", tmp_path / "seed7", tmp_path / "models"
    run("features", "--data-dir", str(small_data), "--weights", "tiny", "--cache", str(cache),
        "--train-views", "0", "--val-views", "1", "--val-fraction", "0.3")
    run("train", "--weights", "tiny", "--cache", str(cache), "--run-dir", str(member), "--epochs", "1",
        "--fine-tune-epochs", "1")
    run("export", "--weights", "tiny", "--run-dir", str(member), "--model", str(models))
    ensemble = tmp_path / "ensemble"
    run("ensemble", "--weights", "tiny", "--cache", str(cache), "--member", str(member), "--run-dir", str(ensemble),
        "--storage", "float16")
    run("export", "--weights", "tiny", "--run-dir", str(ensemble), "--model", str(models))

    def stored(version: int) -> dict[str, tuple[set[str], int]]:
        """bottom / members → (dtypes, bytes) of the model's variables."""
        reader = tf.train.load_checkpoint(str(models / str(version) / "variables" / "variables"))
        dtypes, shapes = reader.get_variable_to_dtype_map(), reader.get_variable_to_shape_map()
        parts: dict[str, tuple[set[str], int]] = {}
        for name in (n for n in dtypes if n.endswith("VARIABLE_VALUE")):
            part = "bottom" if name.startswith("bottom/") else "members"
            kinds, size = parts.get(part, (set(), 0))
            parts[part] = kinds | {dtypes[name].name}, size + int(np.prod(shapes[name])) * dtypes[name].size
        return parts

    full, half = stored(1), stored(2)
    assert full == {"bottom": ({"float32"}, full["bottom"][1]), "members": ({"float32"}, full["members"][1])}
    assert half["bottom"] == full["bottom"]
    assert half["members"] == ({"float16"}, full["members"][1] // 2)
    float32_model, float16_model = LoadedModel.from_dir(models, 1), LoadedModel.from_dir(models, 2)
    assert float16_model.metadata.training["weight_storage"] == "float16"
    assert float32_model.metadata.training["weight_storage"] == "float32"
    images = np.asarray(np.random.default_rng(1).integers(0, 256, (4, 224, 224, 1)), np.uint8)
    np.testing.assert_allclose(float16_model.predict(images), float32_model.predict(images), atol=5e-3)
    assert float16_model.run(EXPLAIN_SIGNATURE, images[:1])[HEATMAP_OUTPUT].shape[0] == 1

    report = tmp_path / "report"
    run("evaluate", "--data-dir", str(small_data), "--split", "val", "--model", str(models), "--version", "2",
        "--out", str(report), "--runtime", "tensorflow", "--precision", "float32")
    metrics = json.loads((report / "metrics.json").read_text())
    chosen = json.loads((ensemble / "training.json").read_text())["operating_points"]
    for name, point in chosen.items():
        for key in ("sensitivity", "specificity"):
            assert metrics["operating_points"][name][key] == pytest.approx(point["validation"][f"clean_{key}"])
    assert [p.name for p in rebuild_runs(models, 2, tmp_path / "rebuilt")] == ["seed7"]


def test_export_refuses_a_run_chosen_for_other_transforms(tmp_path: Path) -> None:
    """The thresholds hold only for the test-time transforms they were chosen on."""
    (tmp_path / "training.json").write_text(json.dumps({"test_time_transforms": ["identity"]}))
    result = CliRunner().invoke(app, ["export", "--weights", "tiny", "--run-dir", str(tmp_path), "--model",
                                      str(tmp_path / "models")])
    assert result.exit_code == 2, result.output
    assert "Invalid value for --run-dir" in result.output
    assert not (tmp_path / "models").exists()
