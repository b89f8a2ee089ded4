"""Calibration sets on disk for tests: arrays saved as .npy beside a `dataset.txt` that
lists them by relative name, as RKNN reads it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def write_dataset(folder: Path, samples: Iterable[np.ndarray], prefix: str = "") -> Path:
    """Each sample as `folder/<prefix><k>.npy`, one line each in `folder/dataset.txt`
    (returned)."""
    lines = []
    for k, sample in enumerate(samples):
        np.save(folder / f"{prefix}{k}.npy", sample)
        lines.append(f"{prefix}{k}.npy")
    listing = folder / "dataset.txt"
    listing.write_text("\n".join(lines) + "\n")
    return listing
