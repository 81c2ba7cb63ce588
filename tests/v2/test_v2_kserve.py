"""KServe's Python SDK (InferenceRESTClient, InferenceGRPCClient) against the gateway: readiness, the model's
metadata, and a DICOM and a JPEG scored as /v1/predict scores them. The SDK runs in a process of its own
(tests/v2/kserve_session.py says why)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from devtools.live_servers import REPO
from tests.v2.live import API_KEY, MODEL, LiveV2, Picture


def test_kserve_rest_and_grpc_clients(
    v2_gateway: LiveV2, mixed_batch: list[Picture], v1_answers: list[dict], tmp_path: Path
) -> None:
    chosen = [2, 0]  # the DICOM, then a JPEG
    paths = []
    for index in chosen:
        paths.append(tmp_path / f"image{index}")
        paths[-1].write_bytes(mixed_batch[index].data)
    command = [sys.executable, "-m", "tests.v2.kserve_session", f"http://{v2_gateway.address}",
               v2_gateway.grpc_address, API_KEY, *map(str, paths)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    expected = [v1_answers[index] for index in chosen]
    version = str(expected[0]["model_version"])

    rest, grpc = seen["rest"], seen["grpc"]
    assert (rest["live"], rest["ready"], rest["model_ready"]) == (True, True, True)
    assert (rest["metadata"]["name"], rest["metadata"]["versions"]) == (MODEL, [version])
    assert [tensor["name"] for tensor in rest["metadata"]["inputs"]] == ["image", "pixels"]
    assert rest["without_key"] == 401
    assert (grpc["ready"], grpc["model_ready"]) == (True, True)
    assert grpc["metadata"] == {
        "name": MODEL, "versions": [version], "inputs": ["image", "pixels"],
        "outputs": ["probability", "label", "threshold", "subtype_probabilities"],
    }
    for transport in (rest, grpc):
        np.testing.assert_allclose(transport["probability"], [a["probability"] for a in expected], atol=1e-6)
        assert transport["label"] == [a["label"] for a in expected]
