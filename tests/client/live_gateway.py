"""What the `live_gateway` fixture (conftest.py) gives a client test: a real gateway process with API keys."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LiveGateway:
    url: str
    api_key: str
    revoked_key: str
    log: Path
