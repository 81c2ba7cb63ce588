"""Reading images out of requests: a multipart field or the raw body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from serving import errors

RAW_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "application/dicom"})
MULTIPART = "multipart/form-data"


def _binary(description: str) -> dict[str, object]:
    return {"type": "string", "format": "binary", "description": description}


def request_body_doc(field: str, many: bool) -> dict[str, object]:
    """OpenAPI `requestBody` for routes that read images with `read_images`."""
    file_schema = _binary("A chest radiograph: JPEG, PNG or DICOM Part 10 (CR/DX, single frame).")
    multipart_field = {"type": "array", "items": file_schema} if many else file_schema
    content: dict[str, object] = {
        MULTIPART: {
            "schema": {"type": "object", "properties": {field: multipart_field}, "required": [field]}
        }
    }
    if not many:
        content |= {media: {"schema": _binary("The image itself.")} for media in sorted(RAW_IMAGE_TYPES)}
    return {"requestBody": {"required": True, "content": content}}


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_images(request: Request, field: str, limit: int | None = None) -> list[bytes]:
    """The image bytes of a request, in order: every multipart part named `field`, or the raw
    body when it is `image/jpeg` / `image/png` / `application/dicom` (single-image routes only: `limit` == 1).
    The format is told by the bytes (DICOM by its `DICM` marker), not by the declared type."""
    kind = media_type(request)
    if kind == MULTIPART:
        async with _multipart(request, limit) as form:
            uploads = [item for item in form.getlist(field) if isinstance(item, UploadFile)]
            if not uploads:
                raise errors.BadRequest(f"multipart field {field!r} with an image file is required")
            return [await upload.read() for upload in uploads]
    if kind in RAW_IMAGE_TYPES and limit == 1:
        body = await request.body()
        if not body:
            raise errors.EmptyBody("the request body is empty")
        return [body]
    if not kind and not await request.body():
        raise errors.EmptyBody("the request body is empty")
    accepted = ", ".join([MULTIPART] + (sorted(RAW_IMAGE_TYPES) if limit == 1 else []))
    raise errors.UnsupportedMediaType(f"content type {kind or '(none)'!r} is not accepted; use {accepted}")


@asynccontextmanager
async def _multipart(request: Request, limit: int | None) -> AsyncIterator[FormData]:
    """The parsed form; the parser stops at `limit` files, so a request with more never buffers them."""
    try:
        form = await request.form(max_files=limit or 1000, max_fields=limit or 1000)
    except HTTPException as exc:  # Starlette's multipart errors (too many files or fields, bad framing)
        if limit is not None and "Too many" in str(exc.detail):
            raise errors.BadRequest(f"at most {limit} image(s) per request") from None
        raise errors.BadRequest(f"malformed multipart body: {exc.detail}") from None
    try:
        yield form
    finally:
        await form.close()
