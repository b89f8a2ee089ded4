"""Calibration inputs as RKNN-Toolkit2 reads them from `dataset.txt`.

One sample per line, one path per model input separated by spaces, relative paths resolved
against the list's folder (`compiler.datasets.read_sample_list`). Each path is a `.npy` array
(the input's exact shape, or that shape without its batch dimension of 1) or an image
(`.jpg/.jpeg/.png/.bmp`), read as RGB ('L' for a 1-channel input), resized bilinearly to the
input's height and width and laid out as the input expects (`image_layout`).

Pre-processing follows RKNN (user guide §3.1.2, §10.3): the built model takes raw data (0..255
pixels) and normalises it itself, so the float model that calibration runs must be fed
`(x - mean) / std` per channel (`normalize`). `quant_img_RGB2BGR` (`InputPreprocess.rgb2bgr`)
swaps image files to BGR before mean/std and never touches `.npy` arrays, which are taken to be
in the model's channel order already.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from compiler.datasets import Sample, load_array, read_sample_list
from compiler.errors import CompilerError
from compiler.ir_model import TensorSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
IMAGE_CHANNELS = (1, 3, 4)  # grayscale, RGB, RGBA: the channel counts an image file can fill
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}

Layout = Literal["NCHW", "NHWC"]


@dataclass(frozen=True)
class InputPreprocess:
    """RKNN's `mean_values`, `std_values` and `quant_img_RGB2BGR` for one model input."""

    mean_values: list[float] | None = None
    std_values: list[float] | None = None
    rgb2bgr: bool = False


# ---------------------------------------------------------------------- layout


def image_layout(shape: Sequence[int]) -> Layout | None:
    """The layout of a 4-D input an image can feed, or None when it is no image input.

    NCHW when dim 1 is an image channel count (1, 3, 4) and dim 3 is not; otherwise NHWC when
    dim 3 is one. Only tiny images are ambiguous (1x3x4x4 reads as NHWC); such inputs should
    be given as `.npy` arrays, which are never re-laid out.
    """
    if len(shape) != 4:
        return None
    if shape[1] in IMAGE_CHANNELS and shape[3] not in IMAGE_CHANNELS:
        return "NCHW"
    if shape[3] in IMAGE_CHANNELS:
        return "NHWC"
    return None


def channel_axis(shape: Sequence[int]) -> int | None:
    """The axis mean/std values index: the image channel axis of a 4-D image input, else
    axis 1 (the dimension after the batch: `1x32` has 32 channels, as in RKNN's error
    message), axis 0 for a vector; None for a scalar."""
    if image_layout(shape) == "NHWC":
        return 3
    if len(shape) >= 2:
        return 1
    return 0 if len(shape) == 1 else None


def _channels(shape: Sequence[int]) -> int:
    axis = channel_axis(shape)
    return 1 if axis is None else int(shape[axis])


# ---------------------------------------------------------------------- normalisation


def check_preprocess(
    spec: TensorSpec, preprocess: InputPreprocess | None, index: int | None = None
) -> None:
    """One-line CompilerError unless mean/std fit the input (number `index`, 0-based, when
    known)."""
    if preprocess is None:
        return
    expected = _channels(spec.shape)
    which = f"input {spec.name!r}" if index is None else f"input {index} ({spec.name!r})"
    given = {"mean_values": preprocess.mean_values, "std_values": preprocess.std_values}
    for label, values in given.items():
        if values is None:
            continue
        if not np.issubdtype(spec.dtype, np.floating):
            raise CompilerError(
                f"{label} given for {which}, whose dtype is "
                f"{spec.dtype}: mean/std apply to float inputs only"
            )
        if len(values) != expected:
            raise CompilerError(
                f"the len of {label} ({list(values)}) for {which} of shape "
                f"{'x'.join(map(str, spec.shape)) or 'scalar'} is wrong, expect {expected}"
            )
    if preprocess.std_values is not None and 0 in preprocess.std_values:
        raise CompilerError(f"std_values for {which} contains 0")


def normalize(raw: np.ndarray, spec: TensorSpec, preprocess: InputPreprocess | None) -> np.ndarray:
    """`(raw - mean) / std` per channel, as float32: what the float model expects for the raw
    data the built model takes. Without mean/std the data is only converted to float32."""
    raw = np.asarray(raw)
    if raw.shape != tuple(spec.shape):
        raise CompilerError(
            f"input {spec.name!r}: data of shape {'x'.join(map(str, raw.shape)) or 'scalar'}, "
            f"the model expects {'x'.join(map(str, spec.shape)) or 'scalar'}"
        )
    if not np.issubdtype(spec.dtype, np.floating):
        check_preprocess(spec, preprocess)  # rejects mean/std on an integer input
        return raw.astype(spec.dtype)
    out = raw.astype(np.float32)
    if preprocess is None or (preprocess.mean_values is None and preprocess.std_values is None):
        return out
    check_preprocess(spec, preprocess)
    axis = channel_axis(spec.shape)
    shape = [1] * out.ndim
    if axis is not None:
        shape[axis] = -1
    if preprocess.mean_values is not None:
        out -= np.asarray(preprocess.mean_values, np.float32).reshape(shape)
    if preprocess.std_values is not None:
        out /= np.asarray(preprocess.std_values, np.float32).reshape(shape)
    return out


# ---------------------------------------------------------------------- reading files


def read_image(path: Path, spec: TensorSpec, rgb2bgr: bool, where: str) -> np.ndarray:
    """An image file as raw float32 pixels in `spec`'s shape and layout (RGB, or BGR when
    `rgb2bgr`; 'L' for a 1-channel input), resized bilinearly to the input's H, W. The EXIF
    orientation is applied, as OpenCV's `imread` (RKNN's reader) does."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # only images need Pillow

    layout = image_layout(spec.shape)
    if layout is None:
        raise CompilerError(
            f"{where}: {path}: input {spec.name!r} (shape {'x'.join(map(str, spec.shape))}) "
            "is not an image input (4-D with 1, 3 or 4 channels); give a .npy array"
        )
    if spec.shape[0] != 1:
        raise CompilerError(
            f"{where}: {path}: input {spec.name!r} has batch {spec.shape[0]}; an image "
            "fills a batch of 1, give a .npy array"
        )
    channels = _channels(spec.shape)
    height, width = spec.shape[1:3] if layout == "NHWC" else spec.shape[2:4]
    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image)
            converted = upright.convert(_PIL_MODES[channels])
            resized = converted.resize((width, height), Image.Resampling.BILINEAR)
            pixels = np.asarray(resized, dtype=np.float32)
    except FileNotFoundError:
        raise CompilerError(f"{where}: {path}: no such file") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise CompilerError(f"{where}: {path}: not a readable image ({exc})") from None
    pixels = pixels.reshape(height, width, channels)
    if rgb2bgr and channels >= 3:
        pixels = np.concatenate([pixels[..., 2::-1], pixels[..., 3:]], axis=-1)
    batch = pixels[None]
    return np.ascontiguousarray(batch if layout == "NHWC" else batch.transpose(0, 3, 1, 2))


def read_array(path: Path, spec: TensorSpec, where: str) -> np.ndarray:
    """A `.npy` array in `spec`'s exact shape (a batch dimension of 1 may be left out)."""
    array = load_array(path, where)
    if array.shape == tuple(spec.shape):
        return array
    if spec.shape and spec.shape[0] == 1 and array.shape == tuple(spec.shape[1:]):
        return array[None]
    raise CompilerError(
        f"{where}: {path}: array of shape {'x'.join(map(str, array.shape)) or 'scalar'}, "
        f"input {spec.name!r} expects {'x'.join(map(str, spec.shape)) or 'scalar'} "
        "(or that shape without its batch dimension of 1)"
    )


def read_raw(path: Path, spec: TensorSpec, rgb2bgr: bool, where: str) -> np.ndarray:
    """One file of a sample, before normalisation."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return read_array(path, spec, where)
    if suffix in IMAGE_SUFFIXES:
        return read_image(path, spec, rgb2bgr, where)
    raise CompilerError(
        f"{where}: {path}: unsupported file type {suffix or '(none)'!r}; "
        f"use .npy or an image ({', '.join(IMAGE_SUFFIXES)})"
    )


# ---------------------------------------------------------------------- the set


class CalibrationSet:
    """The samples of a `dataset.txt`, read lazily: iterating yields one
    {input name: normalised array} at a time, so only one sample is in memory. Iterate it
    as many times as needed (one pass per statistics pass)."""

    def __init__(
        self,
        list_path: Path,
        samples: Sequence[Sample],
        input_specs: Sequence[TensorSpec],
        preprocess: Sequence[InputPreprocess | None],
    ) -> None:
        self.list_path = list_path
        self.samples = list(samples)
        self.input_specs = list(input_specs)
        self.preprocess = list(preprocess)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for sample in self.samples:
            yield self.load(sample)

    def load(self, sample: Sample) -> dict[str, np.ndarray]:
        """One sample, normalised for the float model."""
        return self.normalized(self.load_raw(sample))

    def normalized(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """A raw sample (`load_raw`) normalised for the float model."""
        return {spec.name: normalize(raw[spec.name], spec, pre)
                for spec, pre in zip(self.input_specs, self.preprocess, strict=True)}  # fmt: skip

    def load_raw(self, sample: Sample) -> dict[str, np.ndarray]:
        """One sample as the built model takes it (before mean/std)."""
        where = f"{self.list_path}:{sample.line}"
        return read_sample(sample.paths, self.input_specs, self.preprocess, where)


def read_sample(paths: Sequence[Path], specs: Sequence[TensorSpec],
                preprocess: Sequence[InputPreprocess | None], where: str
                ) -> dict[str, np.ndarray]:  # fmt: skip
    """{input name: raw array} of one sample, one file per input (images read as
    calibration reads them: RGB, or BGR where the input's preprocess says rgb2bgr)."""
    files = zip(specs, preprocess, paths, strict=True)
    return {spec.name: read_raw(Path(path), spec, pre is not None and pre.rgb2bgr, where)
            for spec, pre, path in files}  # fmt: skip


def load_calibration_set(
    list_path: Path | str,
    input_specs: Sequence[TensorSpec],
    preprocess: Sequence[InputPreprocess | None] | None = None,
) -> CalibrationSet:
    """The calibration set listed in `list_path` for a model with `input_specs`, with one
    `InputPreprocess` per input (None: no mean/std, no channel swap). Checks the list and the
    pre-processing now; the files are read while iterating."""
    list_path = Path(list_path)
    specs = list(input_specs)
    pre = list(preprocess) if preprocess is not None else [None] * len(specs)
    if len(pre) != len(specs):
        raise CompilerError(
            f"pre-processing given for {len(pre)} input(s), the model has {len(specs)} "
            "(one mean_values/std_values/quant_img_RGB2BGR entry per input)"
        )
    for index, (spec, p) in enumerate(zip(specs, pre, strict=True)):
        check_preprocess(spec, p, index)
    samples = read_sample_list(list_path, len(specs))
    return CalibrationSet(list_path, samples, specs, pre)
