"""Gateway settings, from `GATEWAY_*` environment variables. These names are part of the product's
interface: deployments and operators depend on them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from radiograph.dicom import RADIOGRAPH_MODALITIES
from radiograph.imaging import DEFAULT_MAX_PIXELS
from radiograph.runtime import DEFAULT_CACHE_DIR

SHIPPED_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "pneumonia"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    host: str = "127.0.0.1"
    """Address uvicorn binds to."""
    port: int = Field(8080, ge=1, le=65535)
    """Port uvicorn binds to."""
    grpc_port: int | None = Field(None, ge=1, le=65535)
    """Port of the Open Inference Protocol's gRPC service (inference.GRPCInferenceService) on `host`; unset: off."""
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
    max_image_pixels: int = Field(DEFAULT_MAX_PIXELS, gt=0)
    """Largest accepted image, width × height, checked before decoding (413 above it)."""
    upstream_timeout_s: float = Field(2.0, gt=0)
    """Deadline of each inference call to the backend (of one image; see the next setting)."""
    upstream_timeout_per_image_s: float = Field(0.2, ge=0)
    """Added to the deadline for each further image in one call, so a 32-image batch on a CPU-only
    node is not cut off (an image costs three backbone passes: the model averages three views)."""
    max_batch_images: int = Field(32, ge=1)
    """Most images in one batch request."""
    inference_runtime: Literal["auto", "tensorflow", "openvino"] = "auto"
    """What runs the model in the embedded backend: `openvino` (the SavedModel converted at start, cached, and
    checked against TensorFlow's outputs), `tensorflow`, or `auto`: OpenVINO where installed. `explain` runs on
    TensorFlow."""
    inference_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    """Numeric precision of the embedded backend. `bfloat16` needs OpenVINO, a CPU with AMX or AVX512-BF16 and the
    model's stored bfloat16 operating points keeping their sensitivity target; `auto`: the fastest precision that
    qualifies. A precision asked for that cannot be served stops the start."""
    openvino_cache_dir: Path = DEFAULT_CACHE_DIR
    """Where converted OpenVINO models are kept (~85 MB per model version), keyed by the SavedModel's bytes."""
    batch_max_size: int = Field(8, ge=1)
    """Embedded backend: most images in one model call; concurrent requests are merged up to it (TF Serving's
    `max_batch_size`)."""
    batch_timeout_micros: int = Field(5000, ge=0)
    """Embedded backend: longest a model call waits for its batch to fill (TF Serving's `batch_timeout_micros`)."""
    batch_max_enqueued_images: int = Field(64, ge=1)
    """Embedded backend: images waiting for the model; a request past it gets 503 `upstream_overloaded` with
    Retry-After (a request alone in the queue is always taken)."""
    upstream_retry_attempts: int = Field(3, ge=1)
    """Most attempts per TF Serving call (first included); only UNAVAILABLE / RESOURCE_EXHAUSTED are retried."""
    upstream_backoff_s: float = Field(0.05, gt=0)
    """Pause before the first retry; doubles per retry, with jitter, never past the deadline."""
    upstream_backoff_max_s: float = Field(0.5, gt=0)
    """Longest pause between two attempts."""
    readiness_timeout_s: float = Field(0.5, gt=0)
    """Deadline of the `GetModelStatus` call behind `/readyz`."""
    readiness_cache_s: float = Field(1.5, ge=0)
    """How long a `/readyz` answer from TF Serving is reused, so probes cannot flood Serving."""
    grpc_max_message_bytes: int = Field(64 * 1024 * 1024, gt=0)
    """Largest gRPC message to or from TF Serving (a 32-image batch is ~1.6 MB)."""
    grpc_keepalive_s: float = Field(30.0, gt=0)
    """Keepalive ping interval while calls are in flight: detects a dead Serving node behind a silent network."""
    dicom_modalities: frozenset[str] = RADIOGRAPH_MODALITIES
    """DICOM Modality codes accepted (JSON list, e.g. `["CR","DX","DR"]`); other modalities get 422."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Gateway log level (logs are JSON lines and never contain image data or file names)."""
    api_keys: str | None = None
    """Named API keys `name1:key1,name2:key2`; with neither this nor `api_keys_file` the gateway runs open."""
    api_keys_file: Path | None = None
    """A mounted file of API keys, one `name:key` per line (`#` comments); read at start-up."""
    revoked_api_keys: str = ""
    """Comma-separated names of keys that are revoked: requests bearing them get 403."""
    max_in_flight: int = Field(16, ge=1)
    """Requests processed at once; past it, scoring requests get 503 `overloaded` with Retry-After at once."""
    shed_retry_after_s: int = Field(1, ge=1)
    """The Retry-After (seconds) sent with a shed request."""
    shutdown_grace_s: float = Field(30.0, gt=0)
    """On SIGTERM, how long in-flight requests may take to finish before the process exits anyway."""
    audit_log_file: Path | None = None
    """Where audit records (one JSON line per prediction) go; unset: the `audit` logger on stderr."""
    drift_window: int = Field(500, ge=0)
    """Scored images per model version in the drift window (`gateway_input_drift`); 0 turns drift monitoring off."""
    drift_reference: Path | None = None
    """Where the drift references are: a model root (`<version>/assets.extra/drift_reference.json`, e.g. TF
    Serving's model volume mounted read-only) or one reference file. Unset: `model_dir` with the embedded
    backend; with TF Serving, drift is reported unavailable."""
    drift_baseline_dir: Path | None = None
    """Writable directory of this site's drift baselines (`site_baseline_v<version>.json`, kept across restarts);
    unset: drift is measured against the model's validation reference only."""
    drift_baseline_images: int = Field(1000, ge=1)
    """Scored images of a model version frozen into its site baseline, the reference of P(pneumonia) from then on."""
    drift_baseline_inputs: bool = False
    """Also measure the acquisition features against the site baseline (default: against the validation pictures)."""

    def drift_reference_source(self) -> Path | None:
        """The drift reference location in effect (see `drift_reference`)."""
        if self.drift_reference is not None:
            return self.drift_reference
        return None if self.serving_address else self.model_dir
    # PACS integration (serving/dicomweb, docs/pacs.md)
    spool_dir: Path | None = None
    """Durable spool of the DICOMweb intake (received instances, results awaiting write-back); unset: the
    `/dicomweb` routes answer 503. One directory per gateway process, on a persistent volume."""
    results_dicomweb_url: str | None = None
    """DICOMweb root the results (SR, optional SC) are stored to by STOW-RS, e.g. `http://orthanc:8042/dicom-web`;
    required with `spool_dir`."""
    results_dicomweb_username: str | None = None
    """HTTP basic-auth user for the write-back (with `results_dicomweb_password`)."""
    results_dicomweb_password: SecretStr | None = None
    """HTTP basic-auth password for the write-back."""
    results_dicomweb_token: SecretStr | None = None
    """Bearer token for the write-back (`Authorization: Bearer ...`), instead of basic auth."""
    results_timeout_s: float = Field(30.0, gt=0)
    """Deadline of one STOW-RS write-back call (connect and read)."""
    results_backoff_s: float = Field(2.0, gt=0)
    """Pause after a failed write-back or scoring attempt; doubles per failure, with jitter."""
    results_backoff_max_s: float = Field(300.0, gt=0)
    """Longest pause between two write-back attempts: the PACS is retried at least this often, forever."""
    results_heatmap: bool = False
    """Also write a Secondary Capture of the heatmap overlay, burned-in NOT FOR DIAGNOSIS (one more model call)."""
    dicomweb_max_body_bytes: int = Field(512 * 1024 * 1024, gt=0)
    """Largest STOW-RS request body (413 above it): a study of a dozen uncompressed DX at 20-40 MB each. It streams
    to the spool's disk, not memory; `/v1` keeps `max_body_bytes`."""
    dicomweb_batch_images: int = Field(8, ge=1)
    """Spooled instances scored in one call to the model (a burst or a backlog drains at the batched speed)."""
    spool_min_free_bytes: int = Field(256 * 1024 * 1024, ge=0)
    """Free space kept on the spool's disk for results: below it, STOW-RS answers 503 with Retry-After."""
    spool_failed_retention_days: float = Field(30.0, gt=0)
    """Days an item stays in the spool's `failed/` (source images with patient data) before it is deleted."""
    intake_unknown_body_part: Literal["refuse", "accept"] = "refuse"
    """An instance whose header states no body part (Body Part Examined, Anatomic Region Sequence): refused/scored."""
    intake_unknown_view: Literal["refuse", "accept"] = "refuse"
    """An instance whose header states no projection (View Position, View Code Sequence): refused or scored."""
    intake_unknown_age: Literal["refuse", "accept"] = "refuse"
    """An instance whose header states no usable age (Patient Age, or Birth Date with Study Date): refused or scored."""


def inference_deadline_s(timeout_s: float, per_image_s: float, n_images: int) -> float:
    """Deadline of one inference call carrying `n_images` images, retries included
    (`upstream_timeout_s`, `upstream_timeout_per_image_s`)."""
    return timeout_s + per_image_s * max(n_images - 1, 0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
