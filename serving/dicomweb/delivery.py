"""Write-back: one result instance to the PACS by STOW-RS, through dicomweb-client (a blocking client: the
worker calls it in a thread). Its own retries are off; the worker retries with backoff, forever, because the
result is on disk and nothing may be dropped.

What the PACS answered decides what happens to the result (`DeliveryError.outcome`):

    transient      unreachable, 5xx, 408, 429, a full PACS (0xA7xx), a processing failure (0x0110), any other
                   answer that does not say why: retried with backoff
    configuration  401, 403, 404, 405, 413, 415, "not authorized" (0x0124): the gateway's URL, credentials or
                   the PACS's settings are wrong for every result. Delivery pauses (retried with backoff, so it
                   resumes by itself once fixed) and `gateway_dicomweb_delivery_paused{cause="configuration"}` is 1
    refused        a failure reason that says this object will never be taken (SOP class or transfer syntax not
                   supported 0x0122/0xC122, data set does not match 0xA9xx, cannot understand 0xCxxx): failed/
"""

from __future__ import annotations

import json
import logging
from typing import Literal

import requests
from dicomweb_client import DICOMwebClient
from pydicom.dataset import Dataset

from serving.config import Settings

# dicomweb-client logs study and SOP Instance UIDs: identifiers stay out of the gateway's logs.
logging.getLogger("dicomweb_client").propagate = False

Outcome = Literal["transient", "configuration", "refused"]
CONFIGURATION_STATUS = frozenset({401, 403, 404, 405, 413, 415})
NOT_AUTHORIZED = 0x0124


class DeliveryError(Exception):
    def __init__(self, message: str, outcome: Outcome) -> None:
        super().__init__(message)
        self.outcome: Outcome = outcome


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
        # the raw answer too: dicomweb-client parses a 2xx body only when its media type has no parameter
        self._answer: requests.Response | None = None
        session.hooks["response"].append(self._keep_answer)

    def _keep_answer(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self._answer = response

    def store(self, instance: Dataset) -> None:
        """Raises DeliveryError; never hangs past the configured timeout."""
        self._answer = None
        try:
            parsed = self.client.store_instances([instance])
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else 0
            reasons = _failure_reasons(_json_body(exc.response))
            raise DeliveryError(
                f"the PACS answered HTTP {status}" + (f", failure reasons {_hex(reasons)}" if reasons else ""),
                classify(status, reasons),
            ) from None
        except (requests.RequestException, OSError, ValueError) as exc:  # ValueError: an unreadable answer
            raise DeliveryError(f"the PACS is unreachable ({type(exc).__name__})", "transient") from None
        answer = _json_body(self._answer) or parsed  # the Store Instances Response
        reasons = _failure_reasons(answer)
        if reasons or not _stored(answer, str(instance.SOPInstanceUID)):
            raise DeliveryError(
                f"the PACS answered success but did not store the instance (failure reasons {_hex(reasons)})",
                classify(200, reasons),
            )


def classify(status: int, reasons: list[int]) -> Outcome:
    """What an answer means for the result: see the module docstring."""
    if status in CONFIGURATION_STATUS or NOT_AUTHORIZED in reasons:
        return "configuration"
    if reasons and all(_never_accepted(reason) for reason in reasons):
        return "refused"
    return "transient"


def _never_accepted(reason: int) -> bool:
    return reason in (0x0122, 0xC122) or reason >> 8 in (0xA9,) or reason >> 12 == 0xC


def _failure_reasons(answer: Dataset | None) -> list[int]:
    if answer is None:
        return []
    items = list(getattr(answer, "FailedSOPSequence", None) or [])
    return [int(getattr(item, "FailureReason", 0) or 0) for item in items]


def _stored(answer: Dataset, sop_instance_uid: str) -> bool:
    """A response without a body (some PACS) counts as stored; one that lists what it stored must list ours."""
    if "ReferencedSOPSequence" not in answer:
        return True
    referenced = answer.ReferencedSOPSequence or []
    return any(str(getattr(item, "ReferencedSOPInstanceUID", "")) == sop_instance_uid for item in referenced)


def _json_body(response: requests.Response | None) -> Dataset | None:
    """The Store Instances Response carried by an error answer, when it is DICOM JSON."""
    if response is None or not response.content:
        return None
    try:
        return Dataset.from_json(json.loads(response.content))
    except Exception:  # XML, HTML, or another body: the status code alone decides
        return None


def _hex(reasons: list[int]) -> str:
    return ", ".join(f"0x{reason:04X}" for reason in reasons) or "none"
