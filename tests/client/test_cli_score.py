"""`python -m client score` and `evaluate` as subprocesses against a real gateway on loopback."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score

from client._results import ResultsFile

if TYPE_CHECKING:
    from tests.client.live_gateway import LiveGateway

REPO = Path(__file__).resolve().parents[2]


def cli(live: LiveGateway, *args: str | Path) -> list[str]:
    return [sys.executable, "-m", "client", *map(str, args), "--url", live.url]


def env_with_key(live: LiveGateway) -> dict[str, str]:
    return os.environ | {"XRAY_API_KEY": live.api_key}


def run(live: LiveGateway, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(live, "score", *args), cwd=REPO, env=env_with_key(live), capture_output=True, text=True, timeout=300
    )


def data_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as stream:
        return list(csv.DictReader(stream))


def gateway_answer(gateway: TestClient, path: Path) -> dict[str, object]:
    response = gateway.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def test_score_a_directory_and_retry_failures_on_rerun(
    live_gateway: LiveGateway, gateway: TestClient, training_sample: list[Path], tmp_path: Path
) -> None:
    images = tmp_path / "images"
    sample = training_sample[::5]  # 4 NORMAL, 8 PNEUMONIA
    for source in sample:
        (images / source.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(source, images / source.parent.name / source.name)
    broken = images / "NORMAL" / "nested" / "broken.jpeg"
    broken.parent.mkdir()
    data = sample[0].read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # truncated: the header reads, the pixels do not
    out = tmp_path / "results.jsonl"

    first = run(live_gateway, images, "--out", out, "--concurrency", "3")
    assert first.returncode == 1, first.stderr
    assert "12 scored, 1 failed; 0 already done" in first.stdout
    assert "img/s" in first.stderr  # the progress bar, with its rate
    rows = {row.path: row for row in ResultsFile(out).read().values()}
    assert len(out.read_text().splitlines()) == 13
    assert rows[str(broken)].error is not None and rows[str(broken)].error.startswith("undecodable_image: ")
    for source in sample:
        row = rows[str(images / source.parent.name / source.name)]
        expected = gateway_answer(gateway, source)
        assert row.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert (row.label, row.threshold, row.model_version) == (
            expected["label"], expected["threshold"], expected["model_version"]
        )
        assert row.probability == pytest.approx(expected["probability"], abs=1e-6)

    shutil.copy(sample[0], broken)  # fixed: the re-run scores only this one
    second = run(live_gateway, images, "--out", out, "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "1 scored, 0 failed; 12 already done" in second.stdout
    final = ResultsFile(out).read()
    assert len(out.read_text().splitlines()) == len(final) == 13
    assert all(row.ok for row in final.values())
    assert final[str(broken)].sha256 == hashlib.sha256(sample[0].read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def killed_and_resumed(
    live_gateway: LiveGateway, training_sample: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Path], Path, list[dict[str, str]], subprocess.CompletedProcess[str]]:
    """Scores the 60-image sample into a CSV, SIGKILLs the run once 15 rows are in, then runs it again."""
    work = tmp_path_factory.mktemp("resume")
    listing, out = work / "inputs.txt", work / "results.csv"
    listing.write_text("".join(f"{path}\n" for path in training_sample))
    args = cli(live_gateway, "score", listing, "--out", out, "--concurrency", "2", "--no-progress")
    process = subprocess.Popen(args, cwd=REPO, env=env_with_key(live_gateway), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if out.exists() and out.read_text().count("\n") > 15:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    before = data_rows(out)
    resumed = run(live_gateway, listing, "--out", out, "--concurrency", "2", "--no-progress")
    return training_sample, out, before, resumed


def test_kill_then_rerun_gives_exactly_one_row_per_input(killed_and_resumed) -> None:
    inputs, out, before, resumed = killed_and_resumed
    assert resumed.returncode == 0, resumed.stderr
    complete_before = [row for row in before if row["error"] == "" and row["request_id"]]
    assert 15 <= len(complete_before) < len(inputs)
    assert f"{len(inputs) - len(complete_before)} scored, 0 failed; {len(complete_before)} already done" in (
        resumed.stdout
    )
    after = data_rows(out)
    assert sorted(row["path"] for row in after) == sorted(str(path) for path in inputs)  # none lost, none twice
    assert all(row["error"] == "" and row["label"] in ("NORMAL", "PNEUMONIA") for row in after)
    kept = {row["path"]: row for row in after}
    assert all(kept[row["path"]] == row for row in complete_before)  # rows written before the kill stay as they were


def test_evaluate_equals_the_gateways_own_labels(
    killed_and_resumed, live_gateway: LiveGateway, gateway: TestClient
) -> None:
    inputs, out, _, _ = killed_and_resumed
    answers = {path: gateway_answer(gateway, path) for path in inputs}
    truth = {path: path.parent.name == "PNEUMONIA" for path in inputs}
    said = {path: answer["label"] == "PNEUMONIA" for path, answer in answers.items()}
    expected_counts = {
        "true_positives": sum(truth[p] and said[p] for p in inputs),
        "false_negatives": sum(truth[p] and not said[p] for p in inputs),
        "true_negatives": sum(not truth[p] and not said[p] for p in inputs),
        "false_positives": sum(not truth[p] and said[p] for p in inputs),
    }
    evaluated = subprocess.run(
        [sys.executable, "-m", "client", "evaluate", str(out), "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(evaluated.stdout)
    assert {key: report[key] for key in expected_counts} == expected_counts
    assert report["scored"] == len(inputs) and report["failed"] == report["unlabelled"] == 0
    tp, tn = expected_counts["true_positives"], expected_counts["true_negatives"]
    assert report["accuracy"] == pytest.approx((tp + tn) / len(inputs))
    assert report["sensitivity"] == pytest.approx(tp / sum(truth.values()))
    assert report["specificity"] == pytest.approx(tn / (len(inputs) - sum(truth.values())))
    probabilities = [answers[p]["probability"] for p in inputs]
    assert report["auc"] == pytest.approx(roc_auc_score([truth[p] for p in inputs], probabilities), abs=1e-9)


def test_a_refused_key_stops_the_run_and_the_rerun_completes_it(
    live_gateway: LiveGateway, training_sample: list[Path], tmp_path: Path
) -> None:
    listing, out = tmp_path / "inputs.txt", tmp_path / "results.csv"
    listing.write_text("".join(f"{path}\n" for path in training_sample[:12]))
    args = cli(live_gateway, "score", listing, "--out", out, "--concurrency", "2", "--no-progress")
    refused = subprocess.run(
        args, cwd=REPO, env=os.environ | {"XRAY_API_KEY": "wrong-key-0123456789"}, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert "stopped early: the last 4 images failed at the gateway (unauthorized: " in refused.stdout
    assert [row["error"].split(":")[0] for row in data_rows(out)] == ["unauthorized"] * 4

    accepted = subprocess.run(args, cwd=REPO, env=env_with_key(live_gateway), capture_output=True, text=True)
    assert accepted.returncode == 0, accepted.stderr
    assert "12 scored, 0 failed; 0 already done" in accepted.stdout
    assert sorted(row["path"] for row in data_rows(out)) == sorted(map(str, training_sample[:12]))
