"""DICOM Part 10 bytes → the same decoded grayscale image the JPEG/PNG path gives.

`imaging.load_radiograph` is the one entry point: it sends DICOM (the `DICM` marker at offset 128)
to `decode_dicom`, which returns a PIL image with `info["source_size"]` as `imaging.decode` does for
JPEG and PNG, and then resizes either the same way.

Pixel pipeline, after PS3.3 C.11 (grayscale pipeline):
  stored values → modality LUT (rescale slope/intercept or a Modality LUT Sequence)
  → VOI (a VOI LUT Sequence, else window centre/width, else the image's own value range)
  → 8 bits → MONOCHROME1 inverted so that bone is bright, as in MONOCHROME2 and the JPEGs.

Errors never quote the file's tags (patient name, IDs, dates): messages name only the transfer
syntax, the modality code, the geometry and the pixel encoding.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from radiograph.image_errors import ImageError, ImageTooLarge, UnsupportedImageFormat
from radiograph.warning_filters import warning_filter

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

DICM_MAGIC_OFFSET = 128
DICM_MAGIC = b"DICM"
RADIOGRAPH_MODALITIES = frozenset({"CR", "DX", "DR"})
GRAYSCALE = frozenset({"MONOCHROME1", "MONOCHROME2"})
# Header values quoted in errors only when they have the shape of their codes (never free text):
_MODALITY = re.compile(r"[A-Z0-9_]{1,8}")
_PHOTOMETRIC = re.compile(r"[A-Z0-9_ ]{1,16}")
_UID = re.compile(r"[0-9.]{1,64}")


class UnsupportedTransferSyntax(UnsupportedImageFormat):
    """The pixel data is encoded in a way no installed decoder reads (415)."""


class UnsupportedModality(ImageError):
    """The file is not a radiograph (CT, MR, ...) or not one this model was trained for (422)."""


def is_dicom(data: bytes) -> bool:
    return data[DICM_MAGIC_OFFSET : DICM_MAGIC_OFFSET + len(DICM_MAGIC)] == DICM_MAGIC


def decode_dicom(
    data: bytes, *, max_pixels: int, modalities: Collection[str] = RADIOGRAPH_MODALITIES
) -> Image.Image:
    """One single-frame grayscale radiograph → PIL "L" image, `info["source_size"]` = (columns, rows)."""
    import pydicom

    _keep_pydicom_logs_in_process()
    try:
        with warning_filter("ignore"):  # pydicom warns about non-conformant values, quoting them
            dataset = pydicom.dcmread(io.BytesIO(data))
            _check_header(dataset, max_pixels, modalities)
            stored = _stored_values(dataset)
            pixels = _to_uint8(stored, dataset)
    except ImageError:
        raise
    except Exception as exc:  # pydicom and its plugins raise many types on malformed files
        # the exception text can quote element values: name only its type
        raise ImageError(f"cannot decode the DICOM file ({type(exc).__name__})") from None
    image = Image.fromarray(pixels)
    image.info["source_size"] = (pixels.shape[1], pixels.shape[0])
    return image


def _stored_values(dataset: Dataset) -> np.ndarray:
    """The stored pixel values. Baseline JPEG pixel data is decoded by Pillow, as the JPEG path decodes a
    JPEG (pylibjpeg's libjpeg differs by ±1 grey level, which the training-form compression amplifies)."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import JPEGBaseline8Bit

    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax == JPEGBaseline8Bit and "pillow" in get_decoder(syntax).available_plugins:
        dataset.pixel_array_options(decoding_plugin="pillow")
    return dataset.pixel_array


def _check_header(dataset: Dataset, max_pixels: int, modalities: Collection[str]) -> None:
    """Refuse what we will not decode, before decoding any pixel."""
    from pydicom.pixels import get_decoder

    if "PixelData" not in dataset:
        raise ImageError("the DICOM file has no pixel data")
    modality = str(getattr(dataset, "Modality", "") or "").upper()
    if modality not in modalities:
        allowed = ", ".join(sorted(modalities))
        raise UnsupportedModality(
            f"DICOM modality {_quoted(modality, _MODALITY)} is not a radiograph this model reads; accepted: {allowed}"
        )
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames != 1:
        raise ImageError(f"the DICOM file has {frames} frames; send a single-frame radiograph")
    photometric = str(getattr(dataset, "PhotometricInterpretation", ""))
    if photometric not in GRAYSCALE or int(getattr(dataset, "SamplesPerPixel", 1)) != 1:
        raise ImageError(
            f"DICOM photometric interpretation {_quoted(photometric, _PHOTOMETRIC)} is not supported; "
            "send a grayscale (MONOCHROME1/2) radiograph"
        )
    rows, columns = int(dataset.Rows), int(dataset.Columns)
    if rows * columns > max_pixels:
        raise ImageTooLarge(f"image is {columns}x{rows} pixels; the limit is {max_pixels} pixels")
    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        available = get_decoder(syntax).is_available
    except NotImplementedError:
        available = False
    if not available:
        name = syntax.name if syntax.is_transfer_syntax else "unknown"
        raise UnsupportedTransferSyntax(
            f"DICOM transfer syntax {name} ({_quoted(str(syntax), _UID)}) cannot be decoded here; "
            "send uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000 pixel data"
        )


def _to_uint8(stored: np.ndarray, dataset: Dataset) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(stored, dataset).astype(np.float64)
    voi_lut = getattr(dataset, "VOILUTSequence", None)
    if voi_lut:
        bits = int(voi_lut[0].LUTDescriptor[2])
        scaled = apply_voi_lut(values, dataset, prefer_lut=True) * (255.0 / (2**bits - 1))
    elif "WindowCenter" in dataset and "WindowWidth" in dataset:
        scaled = _window(values, dataset)
    elif int(getattr(dataset, "BitsStored", 8)) <= 8 and values.min() >= 0 and values.max() <= 255:
        scaled = values  # 8-bit data shown as stored, like a JPEG
    else:
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    pixels = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    if dataset.PhotometricInterpretation == "MONOCHROME1":
        pixels = 255 - pixels
    return pixels


def _window(values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """Window centre/width (the first pair) to [0, 255], PS3.3 C.11.2.1.2."""
    center = float(_first(dataset.WindowCenter))
    width = float(_first(dataset.WindowWidth))
    function = str(getattr(dataset, "VOILUTFunction", "LINEAR") or "LINEAR").upper()
    if function == "SIGMOID":
        return 255.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
    if function == "LINEAR_EXACT":
        return np.clip((values - center) / width + 0.5, 0.0, 1.0) * 255.0
    if width < 1:
        raise ImageError("the DICOM window width is below 1")
    if width == 1:
        return np.where(values < center - 0.5, 0.0, 255.0)
    return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0.0, 1.0) * 255.0


def _first(value: Any) -> Any:
    """Window values can be multi-valued (alternative views): the first is the default view."""
    from pydicom.multival import MultiValue

    return value[0] if isinstance(value, MultiValue | list | tuple) else value


def _quoted(value: str, allowed: re.Pattern[str]) -> str:
    """A header value for an error message, only when it has the expected shape."""
    if not value:
        return "(none)"
    return repr(value) if allowed.fullmatch(value) else "(malformed)"


def _keep_pydicom_logs_in_process() -> None:
    """pydicom's log lines can quote element values (patient data): keep them out of the gateway's logs."""
    logging.getLogger("pydicom").propagate = False
