"""REST → gateway → gRPC → the local TF Serving stand-in → SavedModel, all real, on loopback.
The stand-in runs on its own thread's event loop, with the shipped model loaded once per session."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devtools.live_servers import gateway_thread
from localserving import BackgroundServer
from tests.tfserving.harness import MODEL_NAME, gateway_settings, link_version


@pytest.fixture(scope="session")
def local_serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """The stand-in serving the shipped model as version 1, label `stable` → 1."""
    root = tmp_path_factory.mktemp("serving") / MODEL_NAME
    root.mkdir()
    link_version(root, 1)
    server = BackgroundServer(root, MODEL_NAME, labels={"stable": 1})
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def grpc_gateway(local_serving: BackgroundServer) -> Iterator[httpx.Client]:
    with gateway_thread(gateway_settings(local_serving.address)) as client:
        yield client


@pytest.fixture
def serving(local_serving: BackgroundServer) -> Iterator[BackgroundServer]:
    """The session stand-in, put back as it was (up, no faults) after the test."""
    yield local_serving
    local_serving.faults.delay_s, local_serving.faults.fail_code = 0.0, None
    if not local_serving.running:
        local_serving.start()
