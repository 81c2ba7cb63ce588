"""DICOM Part 10 files built with pydicom from ordinary images, carrying sentinel patient data."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    UID,
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

# Identifying values that must never come back in a response or a log line.
PATIENT_TAGS = {
    "PatientName": "Sentinel^Patricia^Q",
    "PatientID": "PID-7731-SENTINEL",
    "PatientBirthDate": "20190314",
    "StudyDate": "20240229",
    "AccessionNumber": "ACC7731SENT",
    "InstitutionName": "Sentinel General Hospital",
    "ReferringPhysicianName": "Doctor^Sentinel",
    "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.77317731",
}


def dataset(rows: int, columns: int, *, modality: str = "DX", syntax: str = ExplicitVRLittleEndian) -> Dataset:
    """A DX image's header (no pixels yet), with `PATIENT_TAGS` filled in."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = UID(syntax)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = generate_uid()
    for name, value in PATIENT_TAGS.items():
        setattr(ds, name, value)
    ds.Modality = modality
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _pixels(ds: Dataset, stored: np.ndarray, bits_stored: int) -> Dataset:
    allocated = 8 if stored.dtype == np.uint8 else 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = allocated, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = stored.tobytes()
    return ds


def to_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    private = not UID(ds.file_meta.TransferSyntaxUID).is_transfer_syntax  # a syntax pydicom does not know
    options = {"implicit_vr": False, "little_endian": True} if private else {}
    ds.save_as(buffer, enforce_file_format=True, **options)
    return buffer.getvalue()


def monochrome2_8bit(gray: np.ndarray, *, modality: str = "DX") -> Dataset:
    return _pixels(dataset(*gray.shape, modality=modality), gray.astype(np.uint8), 8)


def monochrome1_8bit(gray: np.ndarray) -> Dataset:
    ds = _pixels(dataset(*gray.shape), (255 - gray).astype(np.uint8), 8)
    ds.PhotometricInterpretation = "MONOCHROME1"
    return ds


def windowed_12bit(gray: np.ndarray, *, marker: bool = False) -> Dataset:
    """12 bits stored in 16, values 15·g + 200 (+ a hot spot outside the window), a window mapping them back to g."""
    stored = gray.astype(np.uint16) * 15 + 200
    if marker:  # a burned-in marker above the window, clipped as on a real detector image
        stored[:4, :4] = 4095
    ds = _pixels(dataset(*gray.shape), stored, 12)
    # linear VOI: y = ((x - (c - 0.5)) / (w - 1) + 0.5) · 255, with x = 15 g + 200 → y = g
    ds.WindowWidth = 15 * 255 + 1
    ds.WindowCenter = 15 * 127.5 + 200 + 0.5
    return ds


def rescaled_16bit(gray: np.ndarray) -> Dataset:
    """Stored values 4·g + 1000 with RescaleSlope 0.25 / Intercept −250 (→ g), then a window on g."""
    stored = gray.astype(np.uint16) * 4 + 1000
    ds = _pixels(dataset(*gray.shape), stored, 16)
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 0.25, -250, "US"
    ds.WindowCenter, ds.WindowWidth = 128, 256
    return ds


def jpeg_baseline(jpeg: bytes, rows: int, columns: int) -> Dataset:
    """The JPEG file's own bytes as the encapsulated frame (what a PACS stores for a lossy JPEG image)."""
    ds = dataset(rows, columns, syntax=JPEGBaseline8Bit)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([jpeg])
    return ds


def encapsulated(gray: np.ndarray, syntax: str) -> Dataset:
    """Any transfer syntax's UID over some encapsulated bytes (for syntaxes nothing here can decode)."""
    ds = dataset(*gray.shape, syntax=syntax)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(64)])
    return ds


def compressed(gray: np.ndarray, syntax: str) -> Dataset:
    """8-bit MONOCHROME2 compressed losslessly by pydicom's encoders (RLE, JPEG 2000, ...)."""
    ds = monochrome2_8bit(gray)
    ds.compress(syntax, gray.astype(np.uint8))
    return ds
