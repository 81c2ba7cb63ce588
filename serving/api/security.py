"""API keys: who may score images.

Keys are named (`name:key`), from `GATEWAY_API_KEYS` and/or the mounted file `GATEWAY_API_KEYS_FILE`.
A client sends its key as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Only sha256 digests are
kept, and a presented key is compared with every one of them in constant time (no early exit), so
response time tells nothing about how close a guess was. Revoking a key means listing its name in
`GATEWAY_REVOKED_API_KEYS` while leaving the key configured: its bearer then gets 403, not 401, and
the audit log can still tell who tried. With no key configured the gateway runs open (and says so).

Health, readiness (`/v2/health/*` too), metrics, the API docs and the web page are always open; every other route
requires a key, on the Open Inference Protocol's gRPC port too (as gRPC metadata, `serving/v2/grpc_service.py`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from pathlib import Path

from fastapi import Request

from serving import errors
from serving.config import Settings

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"}
    | {"/v2/health/live", "/v2/health/ready"}  # the Open Inference Protocol's probes
)
"""Request paths, as sent (`scope["path"]`), that need no key; `api/limits.py` never sheds them either."""
OPEN_ROUTES = OPEN_PATHS | {"/web/{asset}"}
"""Route templates (the matched route's `path`) that need no key: the open paths, and the web page's static
files (the page sends the user's key to the API)."""
MIN_KEY_LENGTH = 16
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="pneumonia-gateway"'}


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def parse_keys(text: str, source: str) -> dict[str, str]:
    """`name:key` entries separated by commas or new lines; blank lines and `#` comments skipped."""
    keys: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        name, sep, key = (part.strip() for part in entry.partition(":"))
        if not sep or not name or not key:
            raise ValueError(f"{source}: an API key entry is not `name:key`")
        if len(key) < MIN_KEY_LENGTH:
            raise ValueError(f"{source}: the key of {name!r} is shorter than {MIN_KEY_LENGTH} characters")
        if name in keys:
            raise ValueError(f"{source}: key name {name!r} appears twice")
        keys[name] = key
    return keys


class ApiKeys:
    def __init__(self, keys: dict[str, str], revoked: frozenset[str] = frozenset()) -> None:
        unknown = revoked - set(keys)
        if unknown:
            raise ValueError(f"revoked API key names that are not configured: {', '.join(sorted(unknown))}")
        if len({*keys.values()}) != len(keys):
            raise ValueError("two API key names share the same key")
        self._digests = [(name, _digest(key)) for name, key in keys.items()]
        self.revoked = revoked

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiKeys:
        keys = parse_keys(settings.api_keys or "", "GATEWAY_API_KEYS")
        if settings.api_keys_file is not None:
            from_file = parse_keys(Path(settings.api_keys_file).read_text(), str(settings.api_keys_file))
            if clash := set(keys) & set(from_file):
                raise ValueError(f"API key names defined twice: {', '.join(sorted(clash))}")
            keys |= from_file
        revoked = frozenset(n.strip() for n in settings.revoked_api_keys.split(",") if n.strip())
        return cls(keys, revoked)

    @property
    def open(self) -> bool:
        return not self._digests

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self._digests]

    def identify(self, presented: str) -> str | None:
        """The name of the key, or None; the same work whatever the key."""
        wanted, found = _digest(presented), None
        for name, digest in self._digests:
            if hmac.compare_digest(wanted, digest):
                found = name
        return found

    def authorize(self, presented: str | None) -> str | None:
        """The caller's key name (None when open); raises Unauthorized (401) or Forbidden (403)."""
        if self.open:
            return None
        if not presented:
            raise errors.Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key: <key>`", headers=CHALLENGE
            )
        name = self.identify(presented)
        if name is None:
            raise errors.Unauthorized("the API key is not valid", headers=CHALLENGE)
        if name in self.revoked:
            raise errors.Forbidden("the API key has been revoked")
        return name

    def log_mode(self) -> None:
        if self.open:
            log.warning("no API keys configured (GATEWAY_API_KEYS, GATEWAY_API_KEYS_FILE): the gateway is OPEN")
        else:
            active = [n for n in self.names if n not in self.revoked]
            log.info("API keys required: %d active (%s), %d revoked", len(active), ", ".join(active), len(self.revoked))


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in `Authorization: Bearer <key>` or `X-API-Key` (HTTP headers, or gRPC metadata: lower-case keys)."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key") or None


async def authenticate(request: Request) -> None:
    """App-wide dependency: every route outside `OPEN_ROUTES` needs a valid, unrevoked key. The key's
    name is kept in `request.state.api_key_name` for the audit log."""
    if getattr(request.scope.get("route"), "path", None) in OPEN_ROUTES:
        return
    keys: ApiKeys = request.app.state.api_keys
    request.state.api_key_name = keys.authorize(presented_key(request.headers))
