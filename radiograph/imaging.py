"""Bytes → grayscale uint8 radiograph at the model's input size.

`load_radiograph` is the one entry point of the project's one decode/resize path: training,
evaluation and the gateway all call it, so what the model sees in production is what it saw in
training. JPEG and PNG are decoded here, DICOM by `radiograph.dicom`; every picture is then resized
here the same way.

The header is read first and the pixel count checked before any pixel is decoded (decompression
bombs). A picture is then brought to the form of the training pictures: `train/` was made by Pillow
(bicubic resize of the original to 224×224, saved as JPEG at Pillow's default quality 75, which its
quantisation tables confirm), and the model's scores depend on that compression, so a picture of any
other size than the model's is decoded in full, resized and JPEG-compressed the same way: an
original gives exactly the pixels the training set would hold of it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from radiograph import dicom
from radiograph.dicom import RADIOGRAPH_MODALITIES
from radiograph.image_errors import EmptyImage as EmptyImage
from radiograph.image_errors import ImageError as ImageError
from radiograph.image_errors import ImageTooLarge as ImageTooLarge
from radiograph.image_errors import UnsupportedImageFormat as UnsupportedImageFormat
from radiograph.warning_filters import warning_filter

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG"})
DEFAULT_MAX_PIXELS = 40_000_000  # a 6k×6k detector image; far above any CR/DX radiograph
TRAINING_JPEG_QUALITY = 75  # train/'s quantisation tables: Pillow's at 75 (tests/training/test_picture_form.py)

# A truncated file is an error, not a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


@dataclass(frozen=True)
class Radiograph:
    pixels: np.ndarray  # uint8 [size, size]
    source_width: int
    source_height: int
    decode_s: float = 0.0
    """Seconds spent decoding the bytes (the gateway's `decode` stage latency)."""
    preprocess_s: float = 0.0
    """Seconds spent bringing the decoded picture to the training form (its `preprocess` stage)."""


def load_radiograph(
    data: bytes,
    size: int,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    modalities: Collection[str] = RADIOGRAPH_MODALITIES,
) -> Radiograph:
    """JPEG, PNG or DICOM bytes → uint8 [size, size] grayscale in the form of the training pictures
    (aspect ratio squashed). Raises an `ImageError` subclass for anything it cannot read."""
    started = time.perf_counter()
    if dicom.is_dicom(data):
        image = dicom.decode_dicom(data, max_pixels=max_pixels, modalities=modalities)
    else:
        try:
            image = decode(data, max_pixels=max_pixels)
        except UnsupportedImageFormat as exc:
            raise UnsupportedImageFormat(f"{exc}; DICOM Part 10 files (DICM at byte 128) are accepted too") from exc
    decoded = time.perf_counter()
    pixels = preprocess(image, size)
    width, height = image.info["source_size"]
    return Radiograph(pixels, width, height, decoded - started, time.perf_counter() - decoded)


def decode(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """JPEG or PNG bytes → decoded, upright PIL image. `info["source_size"]` keeps the encoded (width, height)."""
    if not data:
        raise EmptyImage("the image is empty")
    try:
        with warning_filter("error", Image.DecompressionBombWarning):  # only the header parse: decoding runs freely
            image: Image.Image = Image.open(io.BytesIO(data))
        image_format = image.format
        if image_format not in SUPPORTED_FORMATS:
            raise UnsupportedImageFormat(f"unsupported image format {image_format}; send JPEG or PNG")
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(f"image is {width}x{height} pixels; the limit is {max_pixels} pixels")
        if image_format == "JPEG":  # libjpeg's own grayscale output, as the training set was read
            image.draft("L", image.size)
        image.load()
        image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImageFormat("not a JPEG or PNG image") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"cannot decode image: {exc}") from exc
    image.info["source_size"] = (width, height)
    return image


def preprocess(image: Image.Image, size: int) -> np.ndarray:
    """Decoded image → uint8 [size, size] grayscale in the form of the training pictures.

    A picture at the model's size is taken as it is (the training and validation files are such
    pictures); any other is resized and compressed as `train/` was made from the originals.
    """
    try:
        gray = resized_gray(image, size)
        return np.asarray(gray, dtype=np.uint8) if image.size == (size, size) else as_training_jpeg(gray)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image: {exc}") from exc


def resized_gray(image: Image.Image, size: int) -> Image.Image:
    """Decoded image → "L" image at [size, size], bicubic (aspect ratio squashed)."""
    return _to_gray(image).resize((size, size), Image.Resampling.BICUBIC)


def as_training_jpeg(gray: Image.Image) -> np.ndarray:
    """A grayscale picture → its pixels after the JPEG round trip `train/` went through (RGB, quality 75),
    read back by `decode` as the training files are."""
    buffer = io.BytesIO()
    gray.convert("RGB").save(buffer, "JPEG", quality=TRAINING_JPEG_QUALITY)
    return np.asarray(_to_gray(decode(buffer.getvalue())), dtype=np.uint8)


def _to_gray(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: stretch the used range to 8 bits (convert("L") would clip at 255).
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) * (255.0 / (high - low)) if high > low else np.zeros_like(array)
        return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("L")
