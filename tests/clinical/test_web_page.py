"""The web page: its routes, then the page itself in a real headless Chromium (Debian's chromium +
chromedriver, driven with selenium) against a real uvicorn server on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from devtools import dicom_files
from devtools.live_servers import gateway_thread
from radiograph.contract import ModelMetadata
from serving.config import Settings
from serving.main import create_app
from tests.clinical.fakes import FixedBackend
from tests.clinical.pictures import Picture

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=900,1500",
]
WAIT_S = 60


def test_index_is_the_page_with_the_notice(gateway: TestClient) -> None:
    response = gateway.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "Not a diagnostic device." in response.text
    for asset, media in (("app.js", "text/javascript"), ("style.css", "text/css")):
        served = gateway.get(f"/web/{asset}")
        assert served.status_code == 200 and served.headers["content-type"].startswith(media)
    missing = gateway.get("/web/secrets.txt")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")


def test_model_view_is_the_models_metadata(gateway: TestClient, model_metadata: ModelMetadata) -> None:
    body = gateway.get("/web/model").json()
    assert {p["name"]: p["threshold"] for p in body["operating_points"]} == {
        name: point.threshold for name, point in model_metadata.operating_points.items()
    }
    assert body["default_operating_point"] == model_metadata.default_operating_point
    assert tuple(body["subtype_labels"]) == model_metadata.subtype_labels


def test_with_api_keys_the_page_is_open_and_the_api_is_not(model_metadata: ModelMetadata) -> None:
    settings = Settings(api_keys="web:page-test-key-0123456789")
    app = create_app(settings, backend=FixedBackend(model_metadata, 0.5), registry=CollectorRegistry())
    with TestClient(app) as client:
        assert [client.get(path).status_code for path in ("/", "/web/app.js", "/web/style.css")] == [200] * 3
        assert client.get("/web/model").status_code == 401
        assert client.get("/web/model", headers={"x-api-key": "page-test-key-0123456789"}).status_code == 200


@pytest.fixture(scope="module")
def browser_tools() -> tuple[str, str]:
    """chromium and chromedriver, installed with apt by `scripts/ci-tools` when missing."""
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        subprocess.run([str(REPO / "scripts" / "ci-tools")], check=False)
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.fail("Debian's chromium and chromium-driver are needed: run scripts/ci-tools as root")
    return chromium, driver


@pytest.fixture(scope="module")
def live_gateway() -> Iterator[str]:
    """A real server on a free loopback port, with its own app and model."""
    with gateway_thread(Settings(), ready_s=WAIT_S) as client:
        yield str(client.base_url).rstrip("/")


@pytest.fixture
def browser(browser_tools: tuple[str, str], tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser_tools[0]
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=browser_tools[1]), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _scored(driver: object, previous_request: int = 0) -> str:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element("tag name", "body").get_attribute("data-state") in ("done", "error")
        and int(d.find_element("tag name", "body").get_attribute("data-requests") or 0) > previous_request
    )
    return driver.find_element("tag name", "body").get_attribute("data-state")


def _text(driver: object, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def test_page_scores_an_upload_in_chromium(
    browser: object,
    live_gateway: str,
    fullres_samples: list[tuple[Path, str]],
    pictures: list[Picture],
    model_metadata: ModelMetadata,
    tmp_path: Path,
) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    driver = browser
    driver.get(live_gateway + "/")
    assert "Not a diagnostic device." in _text(driver, "notice")
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements("css selector", "#operating-point option"))

    sample = next(path for path, truth in fullres_samples if truth == "PNEUMONIA")
    headers = {"content-type": "image/jpeg"}
    expected = httpx.post(f"{live_gateway}/v1/predict", content=sample.read_bytes(), headers=headers, timeout=WAIT_S)
    expected = expected.json()
    driver.find_element("id", "file").send_keys(str(sample))
    assert _scored(driver) == "done", _text(driver, "error")
    assert _text(driver, "verdict") == expected["label"]
    assert _text(driver, "probability") == f"{expected['probability']:.3f}"
    assert _text(driver, "threshold") == f"{expected['threshold']:.3f}"
    assert _text(driver, "model-version") == str(expected["model_version"])
    assert driver.find_element("id", "subtype-box").is_displayed() == (expected["subtype"] is not None)
    heatmap = driver.find_element("id", "heatmap")
    assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
    assert driver.execute_script("return arguments[0].naturalWidth", heatmap) == 224
    screenshots = Path(os.environ.get("WEB_SCREENSHOT_DIR", tmp_path))
    screenshots.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(screenshots / "web_page.png"))

    Select(driver.find_element("id", "operating-point")).select_by_value("balanced")
    assert _scored(driver, previous_request=1) == "done"
    assert _text(driver, "used-point") == "balanced"

    dcm = tmp_path / "radiograph.dcm"
    dcm.write_bytes(dicom_files.to_bytes(dicom_files.monochrome1_8bit(pictures[0].gray)))
    driver.find_element("id", "file").send_keys(str(dcm))
    assert _scored(driver, previous_request=2) == "done", _text(driver, "error")
    balanced = model_metadata.operating_points["balanced"].threshold
    assert _text(driver, "verdict") == model_metadata.label_for(pictures[0].probability, balanced)
    assert dicom_files.PATIENT_TAGS["PatientName"] not in driver.page_source

    ct = tmp_path / "ct.dcm"
    ct.write_bytes(dicom_files.to_bytes(dicom_files.monochrome2_8bit(pictures[0].gray, modality="CT")))
    driver.find_element("id", "file").send_keys(str(ct))
    assert _scored(driver, previous_request=3) == "error"
    assert "modality 'CT'" in _text(driver, "error")
