"""Every file of the hostile corpus gets a correct prediction or a 4xx JSON error, never a 500, and
the gateway keeps serving. Valid files are the reference radiograph in another container: lossless ones
must score exactly as the reference, JPEG copies closely and with the same label."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

CORPUS = Path(__file__).resolve().parent / "corpus"
OK = (200, None)
SAME = (200, "same")  # lossless: decodes to the reference's pixels, so the same probability to float precision
# JPEG copies (quality 95: ~0.4 grey level mean change after the resize) move the score a little, by as much as the
# model's local slope makes of that noise: the reference's copies by 0.012 (model version 3), 0.023 (version 4) and
# 0.059 (version 5, 0.308 → 0.248); 80 validation images re-encoded at quality 85 (~0.5 grey level), |Δp| 90th
# percentile 0.02, max 0.08-0.10 on versions 3 and 4 (tests/model covers that robustness). Here: the same label,
# and within LOSSY_TOLERANCE, that 0.08-0.10 maximum's lower end.
CLOSE = (200, "close")
LOSSY_TOLERANCE = 0.08

EXPECTED: dict[str, tuple[int, str | None]] = {
    "reference.png": SAME,
    "baseline.jpg": CLOSE,
    "cmyk.jpg": CLOSE,
    "progressive.jpg": CLOSE,
    "rgb.jpg": CLOSE,
    "gray16.png": SAME,
    "palette.png": SAME,
    "rgba.png": SAME,
    "gray_alpha.png": SAME,
    "exif_rotated.jpg": CLOSE,
    "trailing_garbage.jpg": CLOSE,
    # libjpeg resynchronises past corrupt entropy data and returns a damaged picture without an error
    # that Pillow exposes: the gateway cannot tell, like every viewer (see docs/hardening.md).
    "corrupt_huffman.jpg": OK,
    "one_pixel.png": OK,
    "wide_10000x50.png": OK,
    "tall_50x10000.jpg": OK,
    "zip_bomb_6000.png": OK,  # 35 KB inflating to 36 Mpx, under the pixel limit: decoded, answered
    "empty.jpg": (400, "empty_body"),
    "random.bin": (415, "unsupported_media_type"),
    "text.txt": (415, "unsupported_media_type"),
    "junk_before.png": (415, "unsupported_media_type"),
    "animated.gif": (415, "unsupported_media_type"),
    "bitmap.bmp": (415, "unsupported_media_type"),
    "image.tiff": (415, "unsupported_media_type"),
    "image.webp": (415, "unsupported_media_type"),
    "drawing.svg": (415, "unsupported_media_type"),
    "truncated.jpg": (422, "undecodable_image"),
    "truncated.png": (422, "undecodable_image"),
    "header_only.jpg": (422, "undecodable_image"),
    "bad_crc.png": (422, "undecodable_image"),
    "huge_dims.png": (413, "image_too_large"),
    "huge_dims.jpg": (413, "image_too_large"),
    "zip_bomb_over_limit.png": (413, "image_too_large"),
}


def declared_type(name: str) -> str:
    """What a careless client would declare: PNG for .png, JPEG for everything else."""
    return "image/png" if name.endswith(".png") else "image/jpeg"


def send(gateway: TestClient, name: str, transport: str):
    data = (CORPUS / name).read_bytes()
    if transport == "raw":
        return gateway.post("/v1/predict", content=data, headers={"content-type": declared_type(name)})
    return gateway.post("/v1/predict", files={"file": (name, data, declared_type(name))})


@pytest.fixture(scope="module")
def reference(gateway: TestClient) -> dict:
    response = send(gateway, "reference.png", "raw")
    assert response.status_code == 200
    return response.json()


def test_corpus_is_complete() -> None:
    on_disk = {p.name for p in CORPUS.iterdir() if p.suffix != ".py" and p.is_file()}
    assert on_disk == set(EXPECTED)


@pytest.mark.parametrize("transport", ["raw", "multipart"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file(gateway: TestClient, reference: dict, name: str, transport: str) -> None:
    response = send(gateway, name, transport)
    status, expectation = EXPECTED[name]
    assert response.status_code == status, response.text
    body = response.json()
    if status == 200:
        assert body["label"] == ("PNEUMONIA" if body["probability"] >= body["threshold"] else "NORMAL")
        if expectation == "same":
            assert body["probability"] == pytest.approx(reference["probability"], abs=1e-6)
        if expectation == "close":
            assert body["probability"] == pytest.approx(reference["probability"], abs=LOSSY_TOLERANCE)
            assert body["label"] == reference["label"]
    else:
        request_id = response.headers["x-request-id"]
        assert body == {"error": {"code": expectation, "message": body["error"]["message"], "request_id": request_id}}


def test_valid_image_with_wrong_content_type(gateway: TestClient) -> None:
    data = (CORPUS / "baseline.jpg").read_bytes()
    refused = gateway.post("/v1/predict", content=data, headers={"content-type": "text/plain"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (415, "unsupported_media_type")
    # the format is told by the bytes: a PNG declared as JPEG is still read
    png = (CORPUS / "reference.png").read_bytes()
    assert gateway.post("/v1/predict", content=png, headers={"content-type": "image/jpeg"}).status_code == 200


def multipart(*parts: str, boundary: str = "XX") -> tuple[bytes, dict[str, str]]:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--\r\n"
    return body.encode(), {"content-type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize(
    "body",
    [
        multipart('Content-Disposition: form-data; name="file"\r\n\r\na text field, not a file'),
        multipart('Content-Disposition: form-data; name="comment"\r\n\r\nno file at all'),
        multipart(),
        (b"no boundary here", {"content-type": "multipart/form-data"}),
        multipart(*['Content-Disposition: form-data; name="note"\r\n\r\nx'] * 3),
    ],
    ids=["text-field", "other-field", "no-parts", "missing-boundary", "too-many-fields"],
)
def test_multipart_without_file(gateway: TestClient, body: tuple[bytes, dict[str, str]]) -> None:
    content, headers = body
    response = gateway.post("/v1/predict", content=content, headers=headers)
    assert (response.status_code, response.json()["error"]["code"]) == (400, "bad_request")


def test_gateway_keeps_serving_after_the_corpus(gateway: TestClient, reference: dict) -> None:
    for name in EXPECTED:
        send(gateway, name, "raw")
    assert gateway.get("/healthz").json() == {"status": "ok"}
    assert gateway.get("/readyz").status_code == 200
    again = send(gateway, "reference.png", "raw")
    assert again.status_code == 200 and again.json()["probability"] == pytest.approx(reference["probability"], abs=1e-6)


BOMB_PROBE = textwrap.dedent(
    """
    import re, sys
    from radiograph import imaging

    def peak_kib():  # VmHWM: this process's peak RSS (ru_maxrss would inherit the parent's across exec)
        return int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))

    data = open(sys.argv[1], "rb").read()
    imaging.load_radiograph(open(sys.argv[2], "rb").read(), 224)  # warm the decoders
    before = peak_kib()
    try:
        imaging.load_radiograph(data, 224)
        outcome = "decoded"
    except imaging.ImageTooLarge:
        outcome = "too_large"
    print(outcome, peak_kib() - before)
    """
)


def peak_rss_growth_kib(name: str) -> tuple[str, int]:
    """Decode one corpus file in a fresh process; the outcome and how much its peak RSS grew."""
    result = subprocess.run(
        [sys.executable, "-c", BOMB_PROBE, str(CORPUS / name), str(CORPUS / "reference.png")],
        capture_output=True, text=True, check=True, cwd=CORPUS.parents[2],
    )
    outcome, growth = result.stdout.split()
    return outcome, int(growth)


@pytest.mark.parametrize("name", ["huge_dims.png", "huge_dims.jpg", "zip_bomb_over_limit.png"])
def test_bombs_are_refused_from_the_header(name: str) -> None:
    outcome, growth_kib = peak_rss_growth_kib(name)
    assert outcome == "too_large"
    assert growth_kib < 8 * 1024, f"peak RSS grew by {growth_kib} KiB refusing {name}"


def test_rss_probe_sees_a_real_decode() -> None:
    """The probe above can fail: decoding the 36 Mpx bomb under the limit does move peak RSS."""
    outcome, growth_kib = peak_rss_growth_kib("zip_bomb_6000.png")
    assert outcome == "decoded"
    assert growth_kib > 30 * 1024
