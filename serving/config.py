"""Gateway settings, from `GATEWAY_*` environment variables. These names are part of the product's
interface: deployments and operators depend on them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    """Address uvicorn binds to."""
    port: int = Field(8080, ge=1, le=65535)
    """Port uvicorn binds to."""
    model_dir: Path = SHIPPED_MODEL_DIR
    """Model root (`<version>/saved_model.pb`) for the embedded backend; the newest version is served."""
    serving_address: str | None = None
    """TensorFlow Serving gRPC `host:port`. Unset: the embedded backend runs the SavedModel in-process."""
    model_name: str = "pneumonia"
    """Model name as TensorFlow Serving knows it; reported in every answer."""
    model_version_label: str | None = None
    """Serving version label to ask for (`stable`, `canary`); unset: Serving's default version."""
    operating_point: str | None = None
    """Default operating point (a name stored in the model); unset: the model's own default."""
    max_body_bytes: int = Field(20 * 1024 * 1024, gt=0)
    """Largest accepted request body (413 above it)."""
    max_image_pixels: int = Field(40_000_000, gt=0)
    """Largest accepted image, width × height, checked before decoding (413 above it)."""
    upstream_timeout_s: float = Field(2.0, gt=0)
    """Deadline of each inference call to the backend."""
    max_batch_images: int = Field(32, ge=1)
    """Most images in one batch request."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Gateway log level (logs are JSON lines and never contain image data or file names)."""


@lru_cache
def get_settings() -> Settings:
    return Settings()
