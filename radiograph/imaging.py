"""Bytes → grayscale uint8 radiograph at the model's input size.

This is the one decode/resize path of the project: training, evaluation and the gateway all call
`load_radiograph`, so what the model sees in production is what it saw in training.

The header is read first and the pixel count checked before any pixel is decoded (decompression
bombs). A picture is then brought to the form of the training pictures: `train/` was made by Pillow
(bicubic resize of the original to 224×224, saved as JPEG at Pillow's default quality 75, which its
quantisation tables confirm), and the model's scores depend on that compression, so a picture of any
other size than the model's is decoded in full, resized and JPEG-compressed the same way: an
original gives exactly the pixels the training set would hold of it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

SUPPORTED_FORMATS = frozenset({"JPEG", "PNG"})
DEFAULT_MAX_PIXELS = 40_000_000  # a 6k×6k detector image; far above any CR/DX radiograph
DRAFT_FACTOR = 2  # draft decoding (opt-in): JPEGs decoded to >= 2× the target before the resize
TRAINING_JPEG_QUALITY = 75  # train/'s quantisation tables: Pillow's at 75 (tests/training/test_picture_form.py)

# A truncated file is an error, not a half-grey picture.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """The bytes are not a radiograph we can read. `reason` is a stable machine-readable code."""

    reason = "undecodable_image"


class EmptyImage(ImageError):
    reason = "empty_body"


class UnsupportedImageFormat(ImageError):
    reason = "unsupported_media_type"


class ImageTooLarge(ImageError):
    reason = "image_too_large"


@dataclass(frozen=True)
class Radiograph:
    pixels: np.ndarray  # uint8 [size, size]
    source_width: int
    source_height: int


def load_radiograph(
    data: bytes, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: bool = False
) -> Radiograph:
    """Decode JPEG/PNG bytes to a uint8 [size, size] grayscale image (aspect ratio squashed).

    `draft=True` decodes large JPEGs at reduced scale in the DCT domain: faster, but not the training
    set's pixels (`benchmarks.preprocess` measures both); nothing in the product uses it.
    """
    image = decode(data, size, max_pixels=max_pixels, draft=draft)
    return Radiograph(preprocess(image, size), *image.info["source_size"])


def decode(
    data: bytes, size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: bool = False
) -> Image.Image:
    """Bytes → decoded, upright PIL image. `info["source_size"]` keeps the encoded (width, height)."""
    if not data:
        raise EmptyImage("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image_format = image.format
            if image_format not in SUPPORTED_FORMATS:
                raise UnsupportedImageFormat(f"unsupported image format {image_format}; send JPEG or PNG")
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"image is {width}x{height} pixels; the limit is {max_pixels} pixels"
                )
            if image_format == "JPEG":  # libjpeg's own grayscale output, as the training set was read
                image.draft("L", (DRAFT_FACTOR * size,) * 2 if draft else image.size)
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
        return np.asarray(gray, dtype=np.uint8) if image.size == (size, size) else as_training_jpeg(gray, size)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot convert image: {exc}") from exc


def resized_gray(image: Image.Image, size: int) -> Image.Image:
    """Decoded image → "L" image at [size, size], bicubic (aspect ratio squashed)."""
    return _to_gray(image).resize((size, size), Image.Resampling.BICUBIC)


def as_training_jpeg(gray: Image.Image, size: int) -> np.ndarray:
    """A grayscale picture → its pixels after the JPEG round trip `train/` went through (RGB, quality 75),
    read back by `decode` as the training files are."""
    buffer = io.BytesIO()
    gray.convert("RGB").save(buffer, "JPEG", quality=TRAINING_JPEG_QUALITY)
    return np.asarray(_to_gray(decode(buffer.getvalue(), size)), dtype=np.uint8)


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
