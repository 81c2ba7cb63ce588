"""The gateway's one error hierarchy and its one JSON shape.

    GatewayError                       500 internal_error
    ├── BadRequest                     400 bad_request
    │   └── EmptyBody                  400 empty_body
    ├── Unauthorized                   401 unauthorized (no or unknown API key; + WWW-Authenticate)
    ├── Forbidden                      403 forbidden (a revoked API key)
    ├── ModelNotFound                  404 model_not_found (Open Inference Protocol: a model or version not served)
    ├── PayloadTooLarge                413 payload_too_large
    ├── ImageTooLarge                  413 image_too_large
    ├── UnsupportedMediaType           415 unsupported_media_type
    ├── UndecodableImage               422 undecodable_image
    ├── UnknownOperatingPoint          422 unknown_operating_point
    ├── UnsupportedModality            422 unsupported_modality (a DICOM file that is not a CR/DX radiograph)
    ├── NotSupportedByBackend          501 not_supported (e.g. explain on a backend or model without it)
    ├── NotReady                       503 not_ready
    ├── Overloaded                     503 overloaded (too many requests in flight; + Retry-After)
    ├── SpoolUnavailable               503 spool_unavailable (the DICOMweb spool's disk is full or failing;
    │                                  + Retry-After)
    └── UpstreamError                  502 upstream_error (the inference backend failed)
        ├── UpstreamUnavailable        503 upstream_unavailable (+ Retry-After)
        ├── UpstreamOverloaded         503 upstream_overloaded (+ Retry-After)
        └── UpstreamTimeout            504 upstream_timeout

Every error leaves the gateway as `{"error": {"code": ..., "message": ..., "request_id": ...}}`, except under
`/v2` (the Open Inference Protocol, `serving/v2`): there the body is the protocol's `{"error": "<message>"}` and a
request the model cannot take (415, 422) is answered 400, as KServe and Triton answer it.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from radiograph import dicom, imaging

log = logging.getLogger(__name__)


class GatewayError(Exception):
    status_code = 500
    code = "internal_error"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(GatewayError):
    status_code, code = 400, "bad_request"


class EmptyBody(BadRequest):
    code = "empty_body"


class Unauthorized(GatewayError):
    status_code, code = 401, "unauthorized"


class Forbidden(GatewayError):
    status_code, code = 403, "forbidden"


class ModelNotFound(GatewayError):
    status_code, code = 404, "model_not_found"


class PayloadTooLarge(GatewayError):
    status_code, code = 413, "payload_too_large"


class ImageTooLarge(GatewayError):
    status_code, code = 413, "image_too_large"


class UnsupportedMediaType(GatewayError):
    status_code, code = 415, "unsupported_media_type"


class UndecodableImage(GatewayError):
    status_code, code = 422, "undecodable_image"


class UnknownOperatingPoint(GatewayError):
    status_code, code = 422, "unknown_operating_point"


class UnsupportedModality(GatewayError):
    status_code, code = 422, "unsupported_modality"


class NotSupportedByBackend(GatewayError):
    status_code, code = 501, "not_supported"


class NotReady(GatewayError):
    status_code, code = 503, "not_ready"


class Overloaded(GatewayError):
    status_code, code = 503, "overloaded"


class SpoolUnavailable(GatewayError):
    status_code, code = 503, "spool_unavailable"


class UpstreamError(GatewayError):
    status_code, code = 502, "upstream_error"
    upstream_status: str | None = None
    """The gRPC status name TF Serving answered with (e.g. FAILED_PRECONDITION), when it answered."""


class UpstreamUnavailable(UpstreamError):
    status_code, code = 503, "upstream_unavailable"


class UpstreamOverloaded(UpstreamError):
    status_code, code = 503, "upstream_overloaded"


class UpstreamTimeout(UpstreamError):
    status_code, code = 504, "upstream_timeout"


def from_image_error(exc: imaging.ImageError) -> GatewayError:
    """The decode path's errors, in the gateway's terms."""
    if isinstance(exc, imaging.UnsupportedImageFormat):
        return UnsupportedMediaType(str(exc))
    if isinstance(exc, dicom.UnsupportedModality):
        return UnsupportedModality(str(exc))
    if isinstance(exc, imaging.ImageTooLarge):
        return ImageTooLarge(str(exc))
    if isinstance(exc, imaging.EmptyImage):
        return EmptyBody(str(exc))
    return UndecodableImage(str(exc))


def in_batch(error: GatewayError, position: int) -> GatewayError:
    """The same error, its message naming the image's position in the batch (0-based)."""
    return type(error)(f"image {position} of the batch: {error.message}", headers=error.headers)


def error_body(code: str, message: str, request_id: str | None) -> dict[str, object]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


V2_PREFIX = "/v2"


def is_v2(path: str) -> bool:
    return path == V2_PREFIX or path.startswith(V2_PREFIX + "/")


def answer(path: str, status_code: int, code: str, message: str, request_id: str | None) -> tuple[int, dict]:
    """(status, body) of an error on `path`: the gateway's shape, or the Open Inference Protocol's under /v2."""
    if is_v2(path):
        return (400 if status_code in (415, 422) else status_code), {"error": message}
    return status_code, error_body(code, message, request_id)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def install_handlers(app: FastAPI) -> None:
    def respond(
        request: Request, status_code: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        status, body = answer(request.url.path, status_code, code, message, _request_id(request))
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        if exc.status_code >= 500:
            log.warning("request failed: %s %s", exc.code, exc.message)
        return respond(request, exc.status_code, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        return respond(request, 422, "invalid_request", details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return respond(request, exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return respond(request, 500, "internal_error", "internal error")
