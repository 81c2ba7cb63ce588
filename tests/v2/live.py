"""What the v2 fixtures (conftest.py) give a test: a real gateway with API keys and its gRPC port on, and the
images it scores."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from fastapi import FastAPI
from PIL import Image

API_KEY = "open-inference-key-0123456789"
MODEL = "pneumonia"


@dataclass(frozen=True)
class LiveV2:
    http: httpx.Client
    """A client of the gateway that sends the API key."""
    address: str
    """host:port of the REST API, as tritonclient.http takes it."""
    grpc_address: str
    app: FastAPI


@dataclass(frozen=True)
class Picture:
    media_type: str
    data: bytes


def key() -> dict[str, str]:
    """The API key header, a new dict each call (tritonclient adds its own headers to the one it is given)."""
    return {"x-api-key": API_KEY}


def gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
