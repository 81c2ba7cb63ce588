"""What reading a radiograph can fail with, one tree for every format (a leaf: `imaging` and `dicom` both
raise these; the gateway maps them to its answers in `serving.errors.from_image_error`).

    ImageError                        the bytes are not a radiograph we can read
    ├── EmptyImage                    no bytes at all
    ├── UnsupportedImageFormat        not JPEG, PNG or DICOM
    │   └── dicom.UnsupportedTransferSyntax   DICOM pixel data no installed decoder reads
    ├── ImageTooLarge                 over the pixel limit (checked before any pixel is decoded)
    └── dicom.UnsupportedModality     a DICOM file that is not a radiograph this model reads
"""

from __future__ import annotations


class ImageError(ValueError):
    """The bytes are not a radiograph we can read."""


class EmptyImage(ImageError):
    pass


class UnsupportedImageFormat(ImageError):
    pass


class ImageTooLarge(ImageError):
    pass
