"""Write-back: one result instance to the PACS by STOW-RS, through dicomweb-client (a blocking client: the
worker calls it in a thread). Its own retries are off; the worker retries with backoff, forever, because
the result is on disk and nothing may be dropped."""

from __future__ import annotations

import json
import logging

import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from serving.config import Settings

# dicomweb-client logs study and SOP Instance UIDs: identifiers stay out of the gateway's logs.
logging.getLogger("dicomweb_client").propagate = False


class DeliveryError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
        """The PACS refused this instance (a 4xx other than 408/429, or a failure entry): retrying is futile."""


RETRIABLE_STATUS = frozenset({408, 429})


class ResultsStore:
    def __init__(self, settings: Settings) -> None:
        assert settings.results_dicomweb_url, "GATEWAY_RESULTS_DICOMWEB_URL is required"
        session = requests.Session()
        headers = {}
        if settings.results_dicomweb_token is not None:
            headers["Authorization"] = f"Bearer {settings.results_dicomweb_token.get_secret_value()}"
        elif settings.results_dicomweb_username:
            password = settings.results_dicomweb_password
            session.auth = (settings.results_dicomweb_username, password.get_secret_value() if password else "")
        self.client = DICOMwebClient(
            settings.results_dicomweb_url.rstrip("/"),
            session=session,
            headers=headers,
            timeout=settings.results_timeout_s,
        )
        self.client.set_http_retry_params(retry=False)

    def store(self, instance: Dataset) -> None:
        """Raises DeliveryError; never hangs past the configured timeout."""
        try:
            response = self.client.store_instances([instance])
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            permanent = 400 <= status < 500 and status not in RETRIABLE_STATUS
            raise DeliveryError(f"the PACS answered HTTP {status}", permanent=permanent) from None
        except (requests.RequestException, OSError) as exc:
            raise DeliveryError(f"the PACS is unreachable ({type(exc).__name__})", permanent=False) from None
        failed = _failure_reasons(response)
        if failed:
            raise DeliveryError(f"the PACS refused the instance (failure reason {failed})", permanent=True)


def _failure_reasons(response: object) -> list[int]:
    """Failure reasons of a Store Instances Response (the client returns the `requests` response)."""
    content = getattr(response, "content", b"") or b""
    try:
        answer = Dataset.from_json(json.loads(content))
    except Exception:  # no body, or XML: the status code already said it was stored
        return []
    return [int(item.get("FailureReason", 0)) for item in getattr(answer, "FailedSOPSequence", [])]
