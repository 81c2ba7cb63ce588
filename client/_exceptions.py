"""What the client raises. Every exception is a `ClientError`:

    ClientError                      any failure of a call to the gateway
    ├── TransportError               no HTTP answer: connection refused or dropped (after retries)
    │   └── Timeout                  no answer within the client's `timeout`
    └── APIError                     the gateway answered with an error: .status_code .code .message .request_id
        ├── BadRequest               400 bad_request, empty_body; 422 invalid_request
        ├── Unauthorized             401 unauthorized (no API key, or an unknown one)
        ├── Forbidden                403 forbidden (a revoked API key)
        ├── NotFound                 404 not_found (wrong base URL); model_not_found (the gateway's /v2 protocol)
        ├── PayloadTooLarge          413 payload_too_large, image_too_large
        ├── InvalidImage             415 unsupported_media_type; 422 undecodable_image, unsupported_modality
        ├── UnknownOperatingPoint    422 unknown_operating_point
        ├── RateLimited              429, retried (.retry_after)
        ├── ServerError              500 internal_error; 502 upstream_error
        ├── NotSupported             501 not_supported (the gateway's backend or model lacks the feature, e.g. explain)
        ├── ServiceUnavailable       503 overloaded, not_ready, upstream_unavailable, upstream_overloaded,
        │                                spool_unavailable; retried (.retry_after)
        └── GatewayTimeout           504 upstream_timeout, retried

The class is chosen from the error body's `code` first, then from the HTTP status; an unknown code with an
unknown status is a plain `APIError`. "retried" errors (and `TransportError`) reach the caller only once the
retry policy gives up: the last error is raised as it was.
"""

from __future__ import annotations

import json

import httpx


class ClientError(Exception):
    """Base class of everything this package raises."""


class TransportError(ClientError):
    """The request got no HTTP answer: the gateway is down, unreachable, or dropped the connection."""


class Timeout(TransportError):
    """No answer within the client's `timeout` (connect, read or write)."""


class APIError(ClientError):
    """The gateway answered with an error body `{"error": {"code", "message", "request_id"}}`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status_code} {code}: {message}")
        self.status_code = status_code
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        """Seconds the gateway asked us to wait (`Retry-After`), when it said so."""


class BadRequest(APIError):
    """The request was malformed: empty body, missing field, bad query parameter."""


class Unauthorized(APIError):
    """No API key, or one the gateway does not know. Not retried."""


class Forbidden(APIError):
    """The API key is known but revoked. Not retried."""


class NotFound(APIError):
    """The route does not exist: usually a wrong `base_url`."""


class PayloadTooLarge(APIError):
    """The body is over the gateway's byte limit, or the image over its pixel limit."""


class InvalidImage(APIError):
    """The bytes are not an image the gateway can read (format not accepted, truncated, corrupt), or a DICOM file
    of a modality it does not score."""


class UnknownOperatingPoint(APIError):
    """The model has no operating point of that name."""


class RateLimited(APIError):
    """429: too many requests; retried after `Retry-After`."""


class ServerError(APIError):
    """The gateway or its inference backend failed (500, 502)."""


class NotSupported(APIError):
    """501: the gateway's backend or model cannot do this (e.g. explain a prediction). Not retried."""


class ServiceUnavailable(APIError):
    """503: no model loaded yet, or the backend is down or overloaded; retried after `Retry-After`."""


class GatewayTimeout(APIError):
    """504: the inference backend did not answer within the gateway's deadline; retried."""


_BY_CODE: dict[str, type[APIError]] = {
    "bad_request": BadRequest,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "not_found": NotFound,
    "model_not_found": NotFound,
    "empty_body": BadRequest,
    "invalid_request": BadRequest,
    "payload_too_large": PayloadTooLarge,
    "image_too_large": PayloadTooLarge,
    "unsupported_media_type": InvalidImage,
    "undecodable_image": InvalidImage,
    "unsupported_modality": InvalidImage,
    "unknown_operating_point": UnknownOperatingPoint,
    "internal_error": ServerError,
    "upstream_error": ServerError,
    "not_supported": NotSupported,
    "overloaded": ServiceUnavailable,
    "not_ready": ServiceUnavailable,
    "upstream_unavailable": ServiceUnavailable,
    "upstream_overloaded": ServiceUnavailable,
    "spool_unavailable": ServiceUnavailable,
    "upstream_timeout": GatewayTimeout,
}
_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    415: InvalidImage,
    429: RateLimited,
    500: ServerError,
    501: NotSupported,
    502: ServerError,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def error_from_response(response: httpx.Response, retry_after: float | None) -> APIError:
    """The exception for an error answer; bodies that are not the gateway's JSON (a proxy's HTML page)
    still give a class from the status and a short message."""
    try:
        detail = response.json()["error"]
        code, message, request_id = str(detail["code"]), str(detail["message"]), detail.get("request_id")
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
        code, message = f"http_{response.status_code}", response.text[:200] or response.reason_phrase
        request_id = response.headers.get("x-request-id")
    kind = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, APIError)
    return kind(response.status_code, code, message, request_id, retry_after)
