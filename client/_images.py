"""Image inputs → (bytes, content type). The gateway decodes; here we only read and label the bytes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, TypeAlias

ImageInput: TypeAlias = str | os.PathLike[str] | bytes | BinaryIO
"""A path, the image's bytes, or a binary file object open for reading."""

CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".dcm": "application/dicom"}
"""File suffixes the client sends, and the content type each is sent with."""


def sniff(data: bytes) -> str:
    """Content type from the magic bytes; JPEG when unsure (the gateway then names the real problem)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[128:132] == b"DICM":
        return "application/dicom"
    return "image/jpeg"


def content_type_of(path: Path, data: bytes) -> str:
    return CONTENT_TYPES.get(path.suffix.lower()) or sniff(data)


def read_image(image: ImageInput, content_type: str | None = None) -> tuple[bytes, str]:
    """The bytes to send and their content type: from the suffix for a path, sniffed otherwise."""
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        return data, content_type or sniff(data)
    if isinstance(image, str | os.PathLike):
        path = Path(image)
        data = path.read_bytes()
        return data, content_type or content_type_of(path, data)
    data = image.read()
    if not isinstance(data, bytes):
        raise TypeError("file objects must be opened in binary mode ('rb')")
    return data, content_type or sniff(data)
