"""Sample lists in RKNN's `dataset.txt` format: one sample per line, one path per model input
separated by spaces, relative paths resolved against the list's folder.

Here every path is a `.npy` array; image decoding (with mean/std and channel order) belongs to
calibration and arrives with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from compiler.errors import CompilerError


@dataclass(frozen=True)
class Sample:
    line: int  # 1-based line in the list file
    paths: tuple[Path, ...]


def read_sample_list(path: Path | str, n_inputs: int) -> list[Sample]:
    """The samples of list file `path`, for a model with `n_inputs` inputs."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CompilerError(f"cannot read sample list {path}: {exc}") from None
    samples = []
    for number, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) != n_inputs:
            raise CompilerError(
                f"{path}:{number}: {len(fields)} path(s) on the line, the model has "
                f"{n_inputs} input(s) (one path per input, separated by spaces)"
            )
        paths = tuple(_resolve(path.parent, f) for f in fields)
        samples.append(Sample(number, paths))
    if not samples:
        raise CompilerError(f"{path}: the sample list is empty")
    return samples


def _resolve(folder: Path, field: str) -> Path:
    p = Path(field)
    return p if p.is_absolute() else folder / p


def load_array(path: Path, where: str = "") -> np.ndarray:
    """A `.npy` file as an array, with a one-line error naming the file otherwise."""
    prefix = f"{where}: " if where else ""
    if path.suffix.lower() != ".npy":
        raise CompilerError(f"{prefix}{path}: only .npy arrays can be read here")
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CompilerError(f"{prefix}{path}: no such file") from None
    except (OSError, ValueError, EOFError) as exc:
        raise CompilerError(f"{prefix}{path}: not a readable .npy file ({exc})") from None


def iter_samples(
    samples: Sequence[Sample], input_names: Sequence[str], list_path: Path | str
) -> Iterator[dict[str, np.ndarray]]:
    """Each sample as {input name: array}."""
    for sample in samples:
        where = f"{list_path}:{sample.line}"
        pairs = zip(input_names, sample.paths, strict=True)
        yield {name: load_array(path, where) for name, path in pairs}
