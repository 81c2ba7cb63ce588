"""One Orthanc and one gateway (shipped model, embedded backend, DICOMweb on) for the whole directory; tests that
stop either start it again before they end."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from devtools.pacs import Gateway, Orthanc, Picture, orthanc_binary
from radiograph import imaging


@pytest.fixture(scope="session")
def pacs_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pacs")


@pytest.fixture(scope="session")
def pacs(pacs_workdir: Path) -> Iterator[tuple[Orthanc, Gateway]]:
    orthanc_binary()  # fails at once, with the install hint, when Orthanc is missing
    gateway = Gateway(pacs_workdir, results_url="")
    orthanc = Orthanc(pacs_workdir, gateway.url)
    gateway.results_url = f"{orthanc.url}/dicom-web"
    try:
        orthanc.start()
        gateway.start()
        yield orthanc, gateway
    finally:
        gateway.stop()
        orthanc.stop()


@pytest.fixture(scope="session")
def orthanc(pacs: tuple[Orthanc, Gateway]) -> Orthanc:
    return pacs[0]


@pytest.fixture(scope="session")
def dicomweb_gateway(pacs: tuple[Orthanc, Gateway]) -> Gateway:
    return pacs[1]


@pytest.fixture(scope="session")
def pneumonia_picture(data_dir: Path) -> Picture:
    """A PNEUMONIA training picture (the SR then carries subtype probabilities), and a grayscale JPEG of it
    (the training files are 3-component JPEGs: a DICOM frame of one is not MONOCHROME2)."""
    path = sorted((data_dir / "train" / "PNEUMONIA").glob("*.jpeg"))[0]
    gray = imaging.decode(path.read_bytes()).convert("L")
    buffer = io.BytesIO()
    gray.save(buffer, format="JPEG", quality=95)
    return Picture(buffer.getvalue(), np.asarray(gray))
