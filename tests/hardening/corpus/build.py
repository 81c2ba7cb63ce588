"""Writes the hostile/odd-file corpus next to this script (the files are committed; rerun to refresh).

    .venv/bin/python tests/hardening/corpus/build.py [path/to/a/radiograph.jpeg]

Every "valid" file is the same small radiograph (`reference.png`, lossless) in another encoding, so a
test can check that the prediction does not change with the container. The rest are broken, foreign or
hostile. What each must produce is in `tests/hardening/test_corpus.py`.
"""

from __future__ import annotations

import io
import random
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DEFAULT_SOURCE = HERE.parents[3] / "shared/data/chest_xray/fullres_samples/NORMAL/NORMAL2-IM-1427-0001.jpeg"
WIDTH = 384  # small enough to commit, large enough for the model to see a chest


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, idat: bytes) -> bytes:
    """A grayscale PNG whose header says width×height, with the given compressed pixel data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def zeros_png(width: int, height: int, rows: int | None = None) -> bytes:
    """Grayscale zeros, compressed at level 9: a few KB that inflate to width×height bytes."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    data = b"".join(compressor.compress(row) for _ in range(height if rows is None else rows))
    return png_declaring(width, height, data + compressor.flush())


def jpeg_declaring(jpeg: bytes, width: int, height: int) -> bytes:
    """A baseline JPEG whose SOF0 header is patched to claim width×height."""
    at = jpeg.index(b"\xff\xc0") + 5
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4 :]


def corrupt_scan(jpeg: bytes, seed: int = 7) -> bytes:
    """Overwrite bytes in the middle of the entropy-coded scan (never with 0xFF, so markers stay intact)."""
    rng = random.Random(seed)
    start = jpeg.index(b"\xff\xda") + 20
    data = bytearray(jpeg)
    for offset in rng.sample(range(start, len(jpeg) - 2), 64):
        data[offset] = rng.randrange(0, 0xFF)
    return bytes(data)


def build(source: Path) -> dict[str, bytes]:
    original = Image.open(source).convert("L")
    base = original.resize((WIDTH, round(original.height * WIDTH / original.width)), Image.Resampling.BICUBIC)
    jpeg = encode(base, "JPEG", quality=95)
    png = encode(base, "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    frames = [Image.new("L", (64, 64), 0), Image.new("L", (64, 64), 255)]
    rgba = base.convert("RGBA")
    small = base.resize((64, 64))
    return {
        "reference.png": png,
        "baseline.jpg": jpeg,
        "empty.jpg": b"",
        "random.bin": random.Random(1).randbytes(4096),
        "text.txt": b"This is not an image. Patient: nobody.\n" * 20,
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "truncated.png": png[: len(png) // 2],
        "header_only.jpg": jpeg[: jpeg.index(b"\xff\xda")],
        "corrupt_huffman.jpg": corrupt_scan(jpeg),
        "bad_crc.png": png[:-20] + bytes(b ^ 0x55 for b in png[-20:-12]) + png[-12:],
        "trailing_garbage.jpg": jpeg + random.Random(2).randbytes(2048),
        "junk_before.png": b"GARBAGE!" + png,
        "cmyk.jpg": encode(base.convert("CMYK"), "JPEG", quality=95),
        "progressive.jpg": encode(base, "JPEG", quality=95, progressive=True),
        "rgb.jpg": encode(base.convert("RGB"), "JPEG", quality=95),
        "gray16.png": encode(Image.fromarray(np.asarray(base, dtype=np.uint16) * 257), "PNG"),
        "palette.png": encode(base.convert("P"), "PNG"),
        "rgba.png": encode(rgba, "PNG"),
        "gray_alpha.png": encode(base.convert("LA"), "PNG"),
        "exif_rotated.jpg": encode(base.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95, exif=exif),
        "animated.gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0),
        "bitmap.bmp": encode(small, "BMP"),
        "image.tiff": encode(small, "TIFF"),
        "image.webp": encode(small, "WEBP"),
        "drawing.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10"/></svg>',
        "one_pixel.png": encode(Image.new("L", (1, 1), 128), "PNG"),
        "wide_10000x50.png": encode(base.resize((10_000, 50)), "PNG"),
        "tall_50x10000.jpg": encode(base.resize((50, 10_000)), "JPEG"),
        "huge_dims.png": zeros_png(50_000, 50_000, rows=16),
        "huge_dims.jpg": jpeg_declaring(jpeg, 65_000, 65_000),
        "zip_bomb_6000.png": zeros_png(6_000, 6_000),
        "zip_bomb_over_limit.png": zeros_png(8_000, 8_000),
    }


def main() -> None:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    for name, data in build(source).items():
        (HERE / name).write_bytes(data)
        print(f"{name:28s} {len(data):>9,d} bytes")


if __name__ == "__main__":
    main()
