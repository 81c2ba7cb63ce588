"""The gateway against its own OpenAPI schema (schemathesis): no 5xx, and every response matches the
documented status codes, content types, headers and bodies. CI-sized: a few examples per operation.

The gateway runs as a real process on loopback (schemathesis' in-process ASGI client would run the
app's lifespan on every call)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from devtools.live_servers import gateway_process
from serving.main import create_app

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
OPERATIONS = sorted((method.upper(), path) for path, item in create_app().openapi()["paths"].items() for method in item)


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    folder: Path = tmp_path_factory.mktemp("schema")
    env = os.environ | {"GATEWAY_LOG_LEVEL": "WARNING"}
    with gateway_process(env, folder / "gateway.log", ready_s=120) as gateway:
        yield schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_the_schema(api_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
