"""API keys: 401 without or with a wrong key, 403 with a revoked one, open probes and docs, and every
other route covered, whoever adds it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from serving.api.security import OPEN_PATHS, OPEN_ROUTES, ApiKeys, parse_keys
from serving.config import Settings
from serving.main import create_app

CORPUS = Path(__file__).resolve().parent / "corpus"
PACS, RIS = "pacs-key-0123456789abcdef", "ris-key-0123456789abcdef"
OLD, FILED = "old-key-0123456789abcdef", "filed-key-0123456789abcdef"
CHALLENGE = 'Bearer realm="pneumonia-gateway"'


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("keys")
    (folder / "keys").write_text(f"# mounted secret\nfiled:{FILED}\n\n")
    settings = Settings(
        api_keys=f"pacs:{PACS},ris:{RIS},old:{OLD}",
        api_keys_file=folder / "keys",
        revoked_api_keys="old",
        audit_log_file=folder / "audit.jsonl",
    )
    with TestClient(create_app(settings, registry=CollectorRegistry())) as client:
        yield client


def predict(client: TestClient, headers: dict[str, str]):
    data = (CORPUS / "reference.png").read_bytes()
    return client.post("/v1/predict", content=data, headers={"content-type": "image/png", **headers})


def error_of(response) -> tuple[int, str, str]:
    body = response.json()
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return response.status_code, body["error"]["code"], body["error"]["message"]


def test_missing_key_is_401(keyed: TestClient) -> None:
    response = predict(keyed, {})
    assert error_of(response) == (
        401, "unauthorized", "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
    )
    assert response.headers["www-authenticate"] == CHALLENGE


@pytest.mark.parametrize(
    "headers",
    [{"authorization": "Bearer not-a-key-0123456789"}, {"x-api-key": PACS[:-1]}, {"authorization": f"Basic {PACS}"}],
    ids=["wrong-bearer", "wrong-x-api-key", "wrong-scheme"],
)
def test_wrong_key_is_401(keyed: TestClient, headers: dict[str, str]) -> None:
    response = predict(keyed, headers)
    status, code, _ = error_of(response)
    assert (status, code) == (401, "unauthorized")
    assert response.headers["www-authenticate"] == CHALLENGE


def test_revoked_key_is_403(keyed: TestClient) -> None:
    assert error_of(predict(keyed, {"x-api-key": OLD})) == (403, "forbidden", "the API key has been revoked")


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        ({"authorization": f"Bearer {PACS}"}, "pacs"),
        ({"authorization": f"bearer {RIS}"}, "ris"),
        ({"x-api-key": FILED}, "filed"),
    ],
)
def test_valid_keys_score_and_are_audited(keyed: TestClient, headers: dict[str, str], name: str) -> None:
    response = predict(keyed, {**headers, "x-request-id": f"auth-{name}"})
    assert response.status_code == 200, response.text
    audit_file = keyed.app.state.settings.audit_log_file
    records = [json.loads(line) for line in audit_file.read_text().splitlines()]
    mine = [r for r in records if r["request_id"] == f"auth-{name}"]
    assert len(mine) == 1 and mine[0]["api_key"] == name


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc", "/", "/web/app.js"]
)
def test_probes_metrics_docs_and_the_web_page_are_open(keyed: TestClient, path: str) -> None:
    assert keyed.get(path).status_code == 200


def test_open_paths_hold_no_route_template() -> None:
    """`OPEN_PATHS` is compared with request paths as sent (load shedding), `OPEN_ROUTES` with route templates."""
    assert [path for path in OPEN_PATHS if "{" in path] == []
    templates_only = OPEN_ROUTES - OPEN_PATHS
    assert templates_only == {"/web/{asset}"}


def test_every_other_route_needs_a_key(keyed: TestClient) -> None:
    paths = keyed.get("/openapi.json").json()["paths"]
    guarded = {path: methods for path, methods in paths.items() if path not in OPEN_ROUTES}
    assert {"/v1/predict", "/v1/predict/batch"} <= set(guarded)
    for path, methods in guarded.items():
        for method in methods:
            response = keyed.request(method.upper(), path.replace("{", "").replace("}", ""))
            if path.startswith("/v2"):  # the Open Inference Protocol's error shape
                assert (response.status_code, list(response.json())) == (401, ["error"]), (method, path)
                continue
            assert error_of(response)[:2] == (401, "unauthorized"), (method, path)


def test_open_mode_says_so_at_start_up(capsys: pytest.CaptureFixture[str]) -> None:
    with TestClient(create_app(Settings(), registry=CollectorRegistry())):
        pass
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    assert any(line["level"] == "WARNING" and "the gateway is OPEN" in line["message"] for line in lines)


def test_key_parsing() -> None:
    assert parse_keys(f" a:{PACS} ,\n# comment\nb : {RIS}\n", "test") == {"a": PACS, "b": RIS}
    for bad, reason in [
        ("a-without-colon", "not `name:key`"),
        ("a:short", "shorter than 16"),
        (f"a:{PACS},a:{RIS}", "appears twice"),
        (f":{PACS}", "not `name:key`"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_keys(bad, "test")


def test_key_set_refuses_inconsistent_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="not configured: ghost"):
        ApiKeys({"a": PACS}, frozenset({"ghost"}))
    with pytest.raises(ValueError, match="share the same key"):
        ApiKeys({"a": PACS, "b": PACS})
    monkeypatch.setenv("GATEWAY_API_KEYS", f"a:{PACS},b:{RIS}")
    monkeypatch.setenv("GATEWAY_REVOKED_API_KEYS", "b")
    keys = ApiKeys.from_settings(Settings())
    assert keys.authorize(PACS) == "a" and keys.revoked == {"b"}
    assert keys.identify("nope") is None
