"""Calibration inputs from an RKNN `dataset.txt`: .npy arrays and images, relative paths,
several inputs per line, RGB2BGR (images only), mean/std, layouts and the errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from compiler.calibration import (
    InputPreprocess,
    channel_axis,
    image_layout,
    load_calibration_set,
    normalize,
)
from compiler.errors import CompilerError
from compiler.ir_model import TensorSpec

F32 = np.dtype(np.float32)


def spec(name: str, *shape: int, dtype: np.dtype = F32) -> TensorSpec:
    return TensorSpec(name, tuple(shape), dtype)


def write_image(path: Path, pixels: np.ndarray) -> Path:
    """An 8-bit RGB (H, W, 3) or grayscale (H, W) image file, format from the suffix."""
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def random_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def write_list(folder: Path, *lines: str) -> Path:
    path = folder / "dataset.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def only_sample(
    list_path: Path, specs: list[TensorSpec], pre: list[InputPreprocess] | None = None
) -> dict[str, np.ndarray]:
    samples = list(load_calibration_set(list_path, specs, pre))
    assert len(samples) == 1
    return samples[0]


# ---------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("shape", "layout", "axis"),
    [
        ((1, 3, 224, 224), "NCHW", 1),
        ((1, 224, 224, 3), "NHWC", 3),
        ((1, 1, 16, 16), "NCHW", 1),
        ((1, 16, 16, 1), "NHWC", 3),
        ((1, 4, 32, 32), "NCHW", 1),
        ((1, 3, 4, 4), "NHWC", 3),  # ambiguous: the last axis wins
        ((1, 32, 8, 8), None, 1),  # a feature map: mean/std index dim 1
        ((1, 32), None, 1),
        ((32,), None, 0),
        ((), None, None),
    ],
)
def test_image_layout_and_channel_axis(shape, layout, axis):
    assert image_layout(shape) == layout
    assert channel_axis(shape) == axis


# ---------------------------------------------------------------------- reading


def test_png_of_the_input_size_is_read_exactly_in_nchw(tmp_path):
    pixels = random_pixels(6, 5)
    write_image(tmp_path / "a.png", pixels)
    sample = only_sample(write_list(tmp_path, "a.png"), [spec("x", 1, 3, 6, 5)])
    assert sample["x"].dtype == np.float32
    np.testing.assert_array_equal(sample["x"], pixels.transpose(2, 0, 1)[None])


def test_nhwc_and_nchw_inputs_get_the_same_pixels(tmp_path):
    write_image(tmp_path / "a.png", random_pixels(9, 7))
    list_path = write_list(tmp_path, "a.png")
    nchw = only_sample(list_path, [spec("x", 1, 3, 4, 6)])["x"]
    nhwc = only_sample(list_path, [spec("x", 1, 4, 6, 3)])["x"]
    assert nchw.shape == (1, 3, 4, 6) and nhwc.shape == (1, 4, 6, 3)
    np.testing.assert_array_equal(nchw.transpose(0, 2, 3, 1), nhwc)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".jpeg", ".bmp"])
def test_images_are_resized_bilinearly_to_the_input(tmp_path, suffix):
    path = write_image(tmp_path / f"a{suffix}", random_pixels(20, 30))
    sample = only_sample(write_list(tmp_path, path.name), [spec("x", 1, 3, 8, 12)])
    with Image.open(path) as image:  # what Pillow itself gives for this file and size
        want = np.asarray(image.convert("RGB").resize((12, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(sample["x"][0], want.transpose(2, 0, 1).astype(np.float32))


def test_exif_orientation_is_applied(tmp_path):
    """Orientation 6: the stored pixels are shown turned 90 degrees clockwise (OpenCV's
    imread, RKNN's reader, applies it too)."""
    pixels = random_pixels(4, 6)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(tmp_path / "a.png", exif=exif)
    sample = only_sample(write_list(tmp_path, "a.png"), [spec("x", 1, 6, 4, 3)])
    np.testing.assert_array_equal(sample["x"][0], np.rot90(pixels, k=-1))


def test_a_one_channel_input_reads_images_as_grayscale(tmp_path):
    path = write_image(tmp_path / "a.png", random_pixels(4, 5))
    sample = only_sample(write_list(tmp_path, "a.png"), [spec("x", 1, 1, 4, 5)])
    with Image.open(path) as image:
        want = np.asarray(image.convert("L"), dtype=np.float32)
    np.testing.assert_array_equal(sample["x"], want[None, None])


def test_npy_lines_relative_paths_and_missing_batch_dimension(tmp_path):
    (tmp_path / "sub").mkdir()
    first = np.arange(6, dtype=np.float32).reshape(1, 6)
    second = np.arange(6, 12, dtype=np.float32)  # no batch dimension: added
    np.save(tmp_path / "sub" / "a.npy", first)
    np.save(tmp_path / "b.npy", second)
    list_path = write_list(tmp_path, "sub/a.npy", "", "# a comment", str(tmp_path / "b.npy"))
    samples = load_calibration_set(list_path, [spec("x", 1, 6)])
    assert len(samples) == 2
    got = [s["x"] for s in samples]
    np.testing.assert_array_equal(got[0], first)
    np.testing.assert_array_equal(got[1], second[None])


def test_multi_input_lines_follow_the_input_order(tmp_path):
    specs = [spec("image", 1, 3, 4, 5), spec("extra", 1, 5)]
    for k in range(2):
        write_image(tmp_path / f"img{k}.png", random_pixels(4, 5, seed=k))
        np.save(tmp_path / f"extra{k}.npy", np.full((1, 5), k, np.float32))
    list_path = write_list(tmp_path, "img0.png extra0.npy", "img1.png extra1.npy")
    samples = list(load_calibration_set(list_path, specs))
    assert [sorted(s) for s in samples] == [["extra", "image"], ["extra", "image"]]
    for k, sample in enumerate(samples):
        want = random_pixels(4, 5, seed=k).transpose(2, 0, 1)[None]
        np.testing.assert_array_equal(sample["image"], want)
        np.testing.assert_array_equal(sample["extra"], np.full((1, 5), k))


def test_rgb2bgr_swaps_images_only(tmp_path):
    pixels = random_pixels(4, 5)
    write_image(tmp_path / "a.png", pixels)
    np.save(tmp_path / "a.npy", pixels.transpose(2, 0, 1)[None].astype(np.float32))
    specs = [spec("img", 1, 3, 4, 5), spec("arr", 1, 3, 4, 5)]
    swap = [InputPreprocess(rgb2bgr=True), InputPreprocess(rgb2bgr=True)]
    sample = only_sample(write_list(tmp_path, "a.png a.npy"), specs, swap)
    rgb = pixels.transpose(2, 0, 1)[None]
    np.testing.assert_array_equal(sample["img"], rgb[:, ::-1])  # B, G, R
    np.testing.assert_array_equal(sample["arr"], rgb)  # untouched


def test_mean_and_std_per_channel_after_the_swap(tmp_path):
    pixels = random_pixels(4, 5)
    write_image(tmp_path / "a.png", pixels)
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    pre = [InputPreprocess(mean, std, rgb2bgr=True)]
    got = only_sample(write_list(tmp_path, "a.png"), [spec("x", 1, 4, 5, 3)], pre)["x"]
    bgr = pixels[..., ::-1].astype(np.float32)
    want = (bgr - np.array(mean, np.float32)) / np.array(std, np.float32)
    np.testing.assert_allclose(got[0], want, rtol=1e-6)


def test_normalize_nchw_per_channel_and_passthrough():
    raw = np.random.default_rng(0).uniform(0, 255, (1, 3, 2, 2)).astype(np.float32)
    x = spec("x", 1, 3, 2, 2)
    got = normalize(raw, x, InputPreprocess([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    want = (raw - np.array([1, 2, 3]).reshape(1, 3, 1, 1)) / np.array([4, 5, 6]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    only_mean = normalize(raw, x, InputPreprocess(mean_values=[1.0, 2.0, 3.0]))
    np.testing.assert_allclose(only_mean, raw - np.array([1, 2, 3]).reshape(1, 3, 1, 1))
    unchanged = normalize(raw.astype(np.uint8), x, None)
    assert unchanged.dtype == np.float32
    np.testing.assert_array_equal(unchanged, raw.astype(np.uint8))
    assert not np.shares_memory(normalize(raw, x, InputPreprocess([0, 0, 0])), raw)


def test_integer_inputs_keep_their_dtype(tmp_path):
    np.save(tmp_path / "ids.npy", np.array([[1, 2, 3]], np.int64))
    ids = spec("ids", 1, 3, dtype=np.dtype(np.int64))
    sample = only_sample(write_list(tmp_path, "ids.npy"), [ids])
    assert sample["ids"].dtype == np.int64
    np.testing.assert_array_equal(sample["ids"], [[1, 2, 3]])


def test_files_are_read_while_iterating(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 2), np.float32))
    samples = load_calibration_set(write_list(tmp_path, "a.npy"), [spec("x", 1, 2)])
    (tmp_path / "a.npy").unlink()  # the list was checked, the array not read yet
    assert len(samples) == 1
    with pytest.raises(CompilerError, match=r"dataset.txt:1: .*a.npy: no such file"):
        list(samples)


# ---------------------------------------------------------------------- errors


def test_wrong_line_arity(tmp_path):
    list_path = write_list(tmp_path, "a.npy b.npy")
    with pytest.raises(CompilerError, match=r"dataset.txt:1: 2 path\(s\) on the line.* 1 input"):
        load_calibration_set(list_path, [spec("x", 1, 2)])


def test_missing_image_names_the_file_and_the_line(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 3, 2, 2), np.float32))
    list_path = write_list(tmp_path, "a.npy", "missing.png")
    samples = load_calibration_set(list_path, [spec("x", 1, 3, 2, 2)])
    with pytest.raises(CompilerError, match=r"dataset.txt:2: .*missing.png: no such file"):
        list(samples)


def test_unreadable_image(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    samples = load_calibration_set(write_list(tmp_path, "bad.png"), [spec("x", 1, 3, 2, 2)])
    with pytest.raises(CompilerError, match=r"dataset.txt:1: .*bad.png: not a readable image"):
        list(samples)


def test_unsupported_file_type(tmp_path):
    (tmp_path / "a.txt").write_text("1 2 3")
    samples = load_calibration_set(write_list(tmp_path, "a.txt"), [spec("x", 1, 3)])
    with pytest.raises(CompilerError, match=r"a.txt: unsupported file type '.txt'; use .npy"):
        list(samples)


def test_npy_of_the_wrong_shape(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 3, 5, 5), np.float32))
    samples = load_calibration_set(write_list(tmp_path, "a.npy"), [spec("x", 1, 3, 4, 4)])
    with pytest.raises(CompilerError, match=r"array of shape 1x3x5x5, input 'x' expects 1x3x4x4"):
        list(samples)


def test_image_for_a_non_image_input(tmp_path):
    write_image(tmp_path / "a.png", random_pixels(4, 4))
    samples = load_calibration_set(write_list(tmp_path, "a.png"), [spec("x", 1, 32)])
    with pytest.raises(CompilerError, match=r"input 'x' \(shape 1x32\) is not an image input"):
        list(samples)


def test_mean_values_of_the_wrong_length(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((1, 32), np.float32))
    pre = [InputPreprocess(mean_values=[128, 128, 128])]
    with pytest.raises(
        CompilerError,
        match=r"the len of mean_values \(\[128, 128, 128\]\) for input 0 \('x'\) of shape "
        r"1x32 is wrong, expect 32",
    ):
        load_calibration_set(write_list(tmp_path, "a.npy"), [spec("x", 1, 32)], pre)


def test_std_values_of_the_wrong_length_in_normalize():
    with pytest.raises(CompilerError, match=r"len of std_values .* input 'x' .* expect 3"):
        normalize(np.zeros((1, 3, 2, 2)), spec("x", 1, 3, 2, 2), InputPreprocess(None, [1.0]))


def test_std_values_of_zero(tmp_path):
    pre = [InputPreprocess(std_values=[1.0, 0.0, 1.0])]
    with pytest.raises(CompilerError, match=r"std_values for input 0 \('x'\) contains 0"):
        load_calibration_set(write_list(tmp_path, "a.npy"), [spec("x", 1, 3, 2, 2)], pre)


def test_preprocess_entries_must_match_the_inputs(tmp_path):
    with pytest.raises(
        CompilerError, match=r"pre-processing given for 2 input\(s\), the model has 1"
    ):
        load_calibration_set(
            write_list(tmp_path, "a.npy"), [spec("x", 1, 2)], [None, InputPreprocess()]
        )


def test_mean_values_on_an_integer_input(tmp_path):
    ids = spec("ids", 1, 3, dtype=np.dtype(np.int64))
    with pytest.raises(
        CompilerError, match=r"mean_values given for input 0 \('ids'\), whose dtype"
    ):
        load_calibration_set(
            write_list(tmp_path, "a.npy"), [ids], [InputPreprocess(mean_values=[0, 0, 0])]
        )


def test_normalize_checks_the_shape():
    with pytest.raises(CompilerError, match=r"input 'x': data of shape 3x2, the model expects 1x3"):
        normalize(np.zeros((3, 2)), spec("x", 1, 3), None)


def test_an_empty_list(tmp_path):
    with pytest.raises(CompilerError, match=r"the sample list is empty"):
        load_calibration_set(write_list(tmp_path, "# nothing"), [spec("x", 1, 2)])
