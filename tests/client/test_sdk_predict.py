"""The SDK's happy paths against the real gateway: in-process through `httpx.ASGITransport` (AsyncClient), and
over loopback to a real uvicorn (Client)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

import client
from client import AsyncClient, Client, Forbidden, Outcome, Prediction, Unauthorized
from client._images import read_image

if TYPE_CHECKING:
    from tests.client.live_gateway import LiveGateway

FIELDS = ("label", "probability", "threshold", "operating_point", "model_name", "model_version", "subtype")


def gateway_answer(gateway: TestClient, path: Path) -> dict[str, object]:
    response = gateway.post("/v1/predict", content=path.read_bytes(), headers={"content-type": "image/jpeg"})
    assert response.status_code == 200, response.text
    return response.json()


def in_process(gateway: TestClient) -> AsyncClient:
    return AsyncClient("http://gateway", transport=httpx.ASGITransport(app=gateway.app))


def test_public_surface() -> None:
    public = {name for name in dir(client) if not name.startswith("_")} - {"cli"}
    assert set(client.__all__) == public | {"__version__"}
    for name in client.__all__:
        value = getattr(client, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, client.ClientError)
            assert name in client._exceptions.__doc__, f"{name} is missing from the exception tree"


async def test_predict_path_bytes_and_file(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> None:
    path = next(path for path, truth in fullres_samples if truth == "PNEUMONIA")
    expected = gateway_answer(gateway, path)
    async with in_process(gateway) as sdk:
        answers = [
            await sdk.predict(path),
            await sdk.predict(str(path)),
            await sdk.predict(path.read_bytes()),
            await sdk.predict(io.BytesIO(path.read_bytes())),
        ]
    for answer in answers:
        assert isinstance(answer, Prediction)
        assert answer.model_dump(include=set(FIELDS)) == {field: expected[field] for field in FIELDS}
    assert len({answer.request_id for answer in answers}) == 4


async def test_operating_point_is_sent(gateway: TestClient, fullres_samples: list[tuple[Path, str]]) -> None:
    metadata = await gateway.app.state.backend.metadata()
    (other, *_) = sorted(set(metadata.operating_points) - {metadata.default_operating_point})
    path = fullres_samples[8][0]
    expected = gateway.post(
        "/v1/predict",
        params={"operating_point": other},
        content=path.read_bytes(),
        headers={"content-type": "image/jpeg"},
    ).json()
    async with in_process(gateway) as sdk:
        answer = await sdk.predict(path, operating_point=other)
    assert answer.operating_point == other == expected["operating_point"]
    assert answer.threshold == expected["threshold"]


async def test_async_predict_many_yields_each_item_once(
    gateway: TestClient, fullres_samples: list[tuple[Path, str]]
) -> None:
    paths = [path for path, _ in fullres_samples]
    async with in_process(gateway) as sdk:
        outcomes = [outcome async for outcome in sdk.predict_many(paths, concurrency=3)]
    assert sorted(outcome.item for outcome in outcomes) == sorted(paths)
    assert all(isinstance(outcome, Outcome) and outcome.ok and outcome.error is None for outcome in outcomes)
    for outcome in outcomes[:4]:
        assert outcome.prediction is not None
        assert outcome.prediction.probability == pytest.approx(gateway_answer(gateway, outcome.item)["probability"])


async def test_predict_many_reports_failures_in_place(gateway: TestClient, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpeg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    async with in_process(gateway) as sdk:
        outcomes = [o async for o in sdk.predict_many([broken, tmp_path / "missing.png"], concurrency=2)]
    by_item = {outcome.item: outcome for outcome in outcomes}
    assert isinstance(by_item[broken].error, client.InvalidImage)
    assert by_item[broken].sha256 is not None and by_item[broken].prediction is None
    assert isinstance(by_item[tmp_path / "missing.png"].error, FileNotFoundError)


def test_sync_client_over_loopback_with_api_key(
    live_gateway: LiveGateway, gateway: TestClient, training_sample: list[Path]
) -> None:
    paths = training_sample[:12]
    transport = httpx.HTTPTransport()
    with Client(live_gateway.url, api_key=live_gateway.api_key, transport=transport) as sdk:
        single = sdk.predict(paths[0])
        outcomes = list(sdk.predict_many(paths, concurrency=1))
        pool_size = len(transport._pool.connections)  # httpcore's pool: one connection serves every call
    assert single.probability == pytest.approx(gateway_answer(gateway, paths[0])["probability"], abs=1e-6)
    assert sorted(outcome.item for outcome in outcomes) == paths
    assert all(outcome.ok for outcome in outcomes)
    assert pool_size == 1


def test_sync_predict_many_runs_concurrently(live_gateway: LiveGateway, training_sample: list[Path]) -> None:
    paths = training_sample[12:28]
    with Client(live_gateway.url, api_key=live_gateway.api_key) as sdk:
        outcomes = list(sdk.predict_many(iter(paths), concurrency=4))
    assert sorted(outcome.item for outcome in outcomes) == sorted(paths)
    assert all(outcome.ok for outcome in outcomes)


@pytest.mark.parametrize(
    ("key", "error", "status", "code"),
    [
        (None, Unauthorized, 401, "unauthorized"),
        ("not-a-key-0123456789", Unauthorized, 401, "unauthorized"),
        ("revoked", Forbidden, 403, "forbidden"),
    ],
)
def test_api_keys(
    live_gateway: LiveGateway, training_sample: list[Path], key: str | None, error: type, status: int, code: str
) -> None:
    key = live_gateway.revoked_key if key == "revoked" else key
    with Client(live_gateway.url, api_key=key) as sdk, pytest.raises(error) as raised:
        sdk.predict(training_sample[0])
    assert (raised.value.status_code, raised.value.code) == (status, code)
    assert raised.value.request_id


def dicom_bytes(source: Path) -> bytes:
    """A DX DICOM Part 10 file (8-bit MONOCHROME2) holding the pixels of a JPEG, built with pydicom."""
    import numpy as np
    from PIL import Image
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import DigitalXRayImageStorageForPresentation, ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(Image.open(source).convert("L"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PhotometricInterpretation, ds.SamplesPerPixel = "DX", "MONOCHROME2", 1
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def test_dicom_is_sent_as_application_dicom(
    gateway: TestClient, training_sample: list[Path], tmp_path: Path
) -> None:
    data = dicom_bytes(training_sample[30])
    (tmp_path / "study.dcm").write_bytes(data)
    expected = gateway.post("/v1/predict", content=data, headers={"content-type": "application/dicom"})
    assert expected.status_code == 200, expected.text
    async with in_process(gateway) as sdk:
        from_path = await sdk.predict(tmp_path / "study.dcm")
        from_bytes = await sdk.predict(data)
    for answer in (from_path, from_bytes):
        assert answer.model_dump(include=set(FIELDS)) == {field: expected.json()[field] for field in FIELDS}
    assert read_image(tmp_path / "study.dcm")[1] == read_image(data)[1] == "application/dicom"
