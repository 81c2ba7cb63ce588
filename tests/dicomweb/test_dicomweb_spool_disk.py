"""A full or failing spool disk: STOW-RS answers 503 with Retry-After, which senders retry, not a 409 (which says
"never"), after reading the whole body so that the sender gets the answer; nothing half-written stays behind. The
gateway runs on real uvicorn on loopback with a fixed-answer backend (a fake: refusing needs no model)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from prometheus_client import CollectorRegistry

from devtools.live_servers import gateway_thread
from devtools.pacs import multipart, radiograph, to_bytes
from radiograph.contract import ModelMetadata, OperatingPoint
from serving.config import Settings
from serving.main import create_app
from tests.clinical.fakes import FixedBackend

METADATA = ModelMetadata(
    labels=("NORMAL", "PNEUMONIA"), input_height=224, input_width=224,
    operating_points={"screening": OperatingPoint(threshold=0.5, rule="a fake's")},
)
GRAY = (np.arange(1024 * 1024) % 251).astype(np.uint8).reshape(1024, 1024)


def intake(spool: Path, **settings: object) -> Iterator[httpx.Client]:
    config = Settings(spool_dir=spool, results_dicomweb_url="http://127.0.0.1:9/dicom-web", **settings)  # type: ignore[arg-type]
    app = create_app(config, backend=FixedBackend(METADATA, 0.7), registry=CollectorRegistry())
    with gateway_thread(config, app=app) as client:
        yield client


def store(client: httpx.Client) -> httpx.Response:
    body, content_type = multipart(*(to_bytes(radiograph(GRAY, "16bit")) for _ in range(4)))  # 8 MB
    return client.post("/dicomweb/studies", content=body, headers={"content-type": content_type})


def assert_retry_later(response: httpx.Response) -> None:
    assert (response.status_code, response.json()["error"]["code"]) == (503, "spool_unavailable"), response.text
    assert int(response.headers["retry-after"]) > 0


def test_a_full_spool_disk_is_503_with_retry_after(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    for client in intake(spool, spool_min_free_bytes=shutil.disk_usage(tmp_path).total):  # never that much free
        assert_retry_later(store(client))
    assert not list((spool / "incoming").iterdir()) and not list((spool / "tmp").iterdir())


def test_a_failing_spool_disk_is_503_with_retry_after(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    for client in intake(spool):
        shutil.rmtree(spool / "tmp")
        (spool / "tmp").write_bytes(b"")  # every write in progress now fails (NotADirectoryError)
        assert_retry_later(store(client))
        (spool / "tmp").unlink()
        (spool / "tmp").mkdir()
        retried = store(client)  # the disk is back: the sender's retry is taken
        assert retried.status_code == 200 and len(retried.json()["00081199"]["Value"]) == 4

