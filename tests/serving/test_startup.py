"""Settings that do not fit the served model stop the start: the gateway never reports ready and answers
every request with an error."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devtools.live_servers import REPO, free_port
from radiograph.contract import ModelMetadata
from serving.config import Settings
from serving.main import create_app
from serving.scoring import StartupRefused
from tests.clinical.fakes import FixedBackend

REFUSAL = (
    "GATEWAY_OPERATING_POINT='aggressive' is not an operating point of the model 'pneumonia'; "
    "its operating points are: balanced, screening"
)
UVICORN_STARTUP_FAILURE = 3


@pytest.fixture(scope="module")
def shipped_metadata(gateway: TestClient) -> ModelMetadata:
    return asyncio.run(gateway.app.state.backend.metadata())  # type: ignore[attr-defined]


def test_a_default_operating_point_the_model_has_is_used(shipped_metadata: ModelMetadata) -> None:
    app = create_app(Settings(operating_point="balanced"), FixedBackend(shipped_metadata, 0.9), CollectorRegistry())
    with TestClient(app) as client:
        png = (REPO / "tests/hardening/corpus/reference.png").read_bytes()
        answer = client.post("/v1/predict", content=png, headers={"content-type": "image/png"}).json()
    assert answer["operating_point"] == "balanced"
    assert answer["threshold"] == shipped_metadata.operating_points["balanced"].threshold


def test_an_unknown_default_operating_point_is_refused_at_start(shipped_metadata: ModelMetadata) -> None:
    app = create_app(Settings(operating_point="aggressive"), FixedBackend(shipped_metadata, 0.9), CollectorRegistry())
    with pytest.raises(StartupRefused, match=f"^{re.escape(REFUSAL)}$"), TestClient(app):
        pass


@pytest.mark.timeout(300)
def test_the_process_exits_non_zero_naming_the_bad_value(tmp_path: Path) -> None:
    """`python -m serving` as a deployment runs it, on the shipped model: it exits, and says why."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")} | {
        "GATEWAY_OPERATING_POINT": "aggressive", "GATEWAY_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "serving"], cwd=REPO, env=env, capture_output=True, text=True, timeout=280
    )
    assert result.returncode == UVICORN_STARTUP_FAILURE, result.stderr[-3000:]
    assert REFUSAL in result.stderr
