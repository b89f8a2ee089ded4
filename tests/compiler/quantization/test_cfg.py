"""RKNN's `.quantization.cfg`: reading RKNN's files, exact write -> read round trips, one-line
errors for every malformed input, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

import backends.fileio
from compiler.errors import CompilerError
from compiler.quantization.cfg import (
    SECTIONS,
    QuantizationCfg,
    TensorQuantization,
    cfg_to_yaml,
    read_cfg,
    write_cfg,
)
from dialects.npu import numerics as nx

# The user guide's sample (§6.3), as RKNN writes it.
GUIDE_SAMPLE = """\
custom_quantize_layers:
    Conv__350:0: float16
    Conv__358:0: float16
quantize_parameters:
    FeatureExtractor/MobilenetV2/Conv/Relu6:0:
        qtype: asymmetric_quantized
        qmethod: layer
        dtype: int8
        min:
        - 0.0
        max:
        - 6.0
        scale:
        - 0.023529411764705882
        zero_point:
        - -128
"""

# What RKNN-Toolkit2 2.5.0's hybrid_quantization_step1 wrote (research/rknn_peer/RESULTS.md):
# `asym`, four-space sequence items, trailing comments, a float32 graph input.
TOOLKIT_SAMPLE = """\
custom_quantize_layers:                                          # 0.9675021817044731
    /features/features.3/body/body.0/Conv_output_0: float16
    /features/features.0/Conv_output_0: float16                  # 0.9697492398368412
quantize_parameters:
    /c1/Conv_output_0:
        qtype: asym
        qmethod: layer
        dtype: int8
        min:
        -   0.0
        max:
        -   3.5699198246002197
        scale:
        -   0.013999685586667528
        zero_point:
        -   -128
        ori_min:
        -   -3.5224406719207764
        ori_max:
        -   3.5699198246002197
    input:
        qtype: asym
        qmethod: layer
        dtype: float32
        scale: []
        zero_point: []
"""

AWKWARD_NAMES = [
    "Conv__350:0",
    "FeatureExtractor/MobilenetV2/Conv/Relu6:0",
    "/features/features.3/body/body.0/Conv_output_0",
    "a name with spaces: and a colon",
    "yes",  # YAML 1.1 would read these unquoted as a bool, a number, null
    "1",
    "null",
    "- dash",
    "#hash",
    "'quoted'",
    'say "hi"',
    "ünïcode/层",
    "line\x85next\u2028separators",  # NEL: PyYAML's plain style would read it back as a space
    "x" * 200,  # over PyYAML's 128-character simple-key limit: written as `? key`
]
AWKWARD_FLOATS = [0.1, 1e-30, 0.023529411764705882, 5e-324, 1e22, 1.7976931348623157e308]


def write_text(tmp_path: Path, text: str, name: str = "model.quantization.cfg") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_same_params(a: nx.QuantParams, b: nx.QuantParams) -> None:
    assert (a.dtype, a.axis) == (b.dtype, b.axis)
    assert np.shape(a.scale) == np.shape(b.scale)
    assert np.array_equal(a.scale, b.scale)
    assert np.array_equal(a.zero_point, b.zero_point)


def entry(**changes: object) -> TensorQuantization:
    fields: dict[str, object] = dict(dtype="i8", min=[0.0], max=[6.0], scale=[6 / 255])
    fields["zero_point"] = [-128]
    fields.update(changes)
    return TensorQuantization(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- RKNN's files


def test_guide_sample_reads_to_the_hand_worked_parameters(tmp_path: Path) -> None:
    cfg = read_cfg(write_text(tmp_path, GUIDE_SAMPLE))
    assert cfg.custom_quantize_layers == {"Conv__350:0": "f16", "Conv__358:0": "f16"}
    relu6 = cfg.quantize_parameters["FeatureExtractor/MobilenetV2/Conv/Relu6:0"]
    assert relu6.scale == [6 / 255] == [0.023529411764705882]
    assert relu6.zero_point == [-128]
    assert (relu6.qtype, relu6.qmethod, relu6.dtype) == ("asymmetric_quantized", "layer", "i8")
    assert (relu6.min, relu6.max, relu6.ori_min, relu6.ori_max) == ([0.0], [6.0], None, None)
    assert_same_params(relu6.to_params(), nx.asymmetric_params(0, 6, "i8"))


def test_toolkit_output_reads(tmp_path: Path) -> None:
    cfg = read_cfg(write_text(tmp_path, TOOLKIT_SAMPLE))
    assert list(cfg.custom_quantize_layers.values()) == ["f16", "f16"]
    conv = cfg.quantize_parameters["/c1/Conv_output_0"]
    assert conv.qtype == "asym"
    assert conv.ori_min == [-3.5224406719207764]
    graph_input = cfg.quantize_parameters["input"]
    assert (graph_input.dtype, graph_input.scale, graph_input.zero_point) == ("f32", [], [])
    assert graph_input.to_params().dtype == "f32"
    # kept as found on the way back out
    assert read_cfg(write_cfg_to(tmp_path, cfg)) == cfg
    assert "qtype: asym\n" in (tmp_path / "out.cfg").read_text()


def write_cfg_to(tmp_path: Path, cfg: QuantizationCfg) -> Path:
    path = tmp_path / "out.cfg"
    write_cfg(cfg, path)
    return path


def test_written_file_looks_like_rknns(tmp_path: Path) -> None:
    cfg = read_cfg(write_text(tmp_path, GUIDE_SAMPLE))
    text = cfg_to_yaml(cfg)
    assert text == GUIDE_SAMPLE  # the guide's layout, byte for byte
    data = yaml.safe_load(text)
    assert tuple(data) == SECTIONS


def test_empty_config_writes_both_sections(tmp_path: Path) -> None:
    path = write_cfg_to(tmp_path, QuantizationCfg())
    assert path.read_text() == "custom_quantize_layers: {}\nquantize_parameters: {}\n"
    assert read_cfg(path) == QuantizationCfg()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}\n",
        "custom_quantize_layers:\n",
        "quantize_parameters: {}\n",
        "custom_quantize_layers: {}\nquantize_parameters:\n",
    ],
)
def test_both_sections_are_optional(tmp_path: Path, text: str) -> None:
    assert read_cfg(write_text(tmp_path, text)) == QuantizationCfg()


def test_one_section_alone(tmp_path: Path) -> None:
    cfg = read_cfg(write_text(tmp_path, "custom_quantize_layers:\n    a: int16\n    b: int4\n"))
    assert cfg == QuantizationCfg({"a": "i16", "b": "i4"})


def test_lenient_numbers(tmp_path: Path) -> None:
    """Integers in float fields, and YAML 1.1's `1e-3` (read as a string without a dot)."""
    text = GUIDE_SAMPLE.replace("- 0.0\n", "- 0\n").replace("- 6.0\n", "- 6e0\n")
    relu6 = read_cfg(write_text(tmp_path, text)).quantize_parameters[
        "FeatureExtractor/MobilenetV2/Conv/Relu6:0"
    ]
    assert (relu6.min, relu6.max) == ([0.0], [6.0])
    assert isinstance(relu6.min[0], float)


# ---------------------------------------------------------------------- parameters


def test_per_channel_weights_are_axis_0() -> None:
    params = nx.weight_params(np.array([[[1.0]], [[-2.0]], [[0.5]]]), "i8", per_channel=True)
    weights = TensorQuantization.from_params(params, -np.array([1, 2, 0.5]), [1, 2, 0.5])
    assert (weights.qmethod, weights.zero_point) == ("channel", [0, 0, 0])
    assert weights.scale == [1 / 127, 2 / 127, 0.5 / 127]
    assert_same_params(weights.to_params(), params)


def test_one_channel_is_per_tensor() -> None:
    params = nx.symmetric_params(np.array([2.0]), "i8", axis=0)
    weights = TensorQuantization.from_params(params, -2.0, 2.0)
    assert weights.qmethod == "channel"
    assert_same_params(weights.to_params(), nx.symmetric_params(2.0, "i8"))


def test_from_params_keeps_the_unclipped_range() -> None:
    params = nx.asymmetric_params(-1.0, 3.0, "i16")
    made = TensorQuantization.from_params(params, -1.0, 3.0, ori_lo=-5.0, ori_hi=9.0)
    assert (made.dtype, made.qmethod, made.ori_min, made.ori_max) == ("i16", "layer", [-5.0], [9.0])
    assert_same_params(made.to_params(), params)


def test_float16_entry() -> None:
    made = TensorQuantization.from_params(nx.QuantParams("f16", np.float64(1), np.int64(0)), 0, 1)
    assert (made.scale, made.zero_point, made.min, made.max) == ([], [], [0.0], [1.0])
    assert_same_params(made.to_params(), nx.QuantParams("f16", np.float64(1), np.int64(0)))


def test_other_axes_are_refused() -> None:
    params = nx.symmetric_params(np.array([1.0, 2.0]), "i8", axis=1)
    with pytest.raises(ValueError, match="axis 1"):
        TensorQuantization.from_params(params, [-1, -2], [1, 2])


# ---------------------------------------------------------------------- round trips


def awkward_cfg() -> QuantizationCfg:
    cfg = QuantizationCfg()
    for i, name in enumerate(AWKWARD_NAMES):
        cfg.custom_quantize_layers[name] = ("f16", "i16", "i8", "i4")[i % 4]
        cfg.quantize_parameters[name] = entry(
            qmethod="channel",
            min=[-f for f in AWKWARD_FLOATS],
            max=AWKWARD_FLOATS,
            scale=AWKWARD_FLOATS,
            zero_point=[0, -128, 127, 5, -3, 1],
            ori_min=[-2 * f for f in AWKWARD_FLOATS[:-1]] + [-1.0],
            ori_max=[0.0, -0.0, 1.0, 2.0, 3.0, 4.0],
        )
    return cfg


def test_round_trip_is_identical(tmp_path: Path) -> None:
    cfg = awkward_cfg()
    path = write_cfg_to(tmp_path, cfg)
    back = read_cfg(path)
    assert back == cfg
    assert list(back.quantize_parameters) == AWKWARD_NAMES  # graph order, not sorted
    assert list(back.custom_quantize_layers) == AWKWARD_NAMES
    assert cfg_to_yaml(back) == path.read_text(encoding="utf-8")


def test_written_file_is_plain_yaml(tmp_path: Path) -> None:
    data = yaml.safe_load(write_cfg_to(tmp_path, awkward_cfg()).read_text(encoding="utf-8"))
    assert tuple(data) == SECTIONS
    assert list(data["quantize_parameters"]) == AWKWARD_NAMES
    assert data["quantize_parameters"]["Conv__350:0"]["dtype"] == "int8"
    assert data["quantize_parameters"]["yes"]["scale"] == AWKWARD_FLOATS


def test_numpy_values_are_written_as_plain_numbers(tmp_path: Path) -> None:
    made = entry(min=[np.float64(0.0)], max=[np.float32(6.0)], zero_point=[np.int64(-128)])
    text = cfg_to_yaml(QuantizationCfg(quantize_parameters={"t": made}))
    assert "!!" not in text
    assert yaml.safe_load(text)["quantize_parameters"]["t"]["zero_point"] == [-128]


finite = st.floats(allow_nan=False, allow_infinity=False)
names = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def tensor_entries(draw: st.DrawFn) -> TensorQuantization:
    dtype = draw(st.sampled_from(["i8", "i16", "i4"]))
    qmin, qmax = nx.qrange(dtype)
    n = draw(st.integers(1, 4))
    qmethod = "channel" if n > 1 else draw(st.sampled_from(["layer", "channel"]))
    ranges = [sorted(draw(st.lists(finite, min_size=2, max_size=2))) for _ in range(n)]
    scales = st.floats(min_value=0, exclude_min=True, allow_infinity=False)
    ori = draw(st.booleans())
    return TensorQuantization(
        qtype=draw(st.sampled_from(["asymmetric_quantized", "asym"])),
        qmethod=qmethod,
        dtype=dtype,
        min=[lo for lo, _ in ranges],
        max=[hi for _, hi in ranges],
        scale=draw(st.lists(scales, min_size=n, max_size=n)),
        zero_point=draw(st.lists(st.integers(qmin, qmax), min_size=n, max_size=n)),
        ori_min=draw(st.lists(finite, min_size=n, max_size=n)) if ori else None,
        ori_max=draw(st.lists(finite, min_size=n, max_size=n)) if ori else None,
    )


@settings(max_examples=300, deadline=None)
@given(
    layers=st.dictionaries(names, st.sampled_from(["f16", "i16", "i8", "i4"]), max_size=4),
    params=st.dictionaries(names, tensor_entries(), max_size=4),
)
def test_round_trip_property(
    tmp_path_factory: pytest.TempPathFactory,
    layers: dict[str, str],
    params: dict[str, TensorQuantization],
) -> None:
    cfg = QuantizationCfg(layers, params)
    path = tmp_path_factory.mktemp("cfg") / "model.quantization.cfg"
    write_cfg(cfg, path)
    back = read_cfg(path)
    assert back == cfg
    assert list(back.quantize_parameters) == list(params)
    for name, made in params.items():
        assert_same_params(back.quantize_parameters[name].to_params(), made.to_params())


# ---------------------------------------------------------------------- errors

TENSOR = "FeatureExtractor/MobilenetV2/Conv/Relu6:0"


def sample_with(old: str, new: str) -> str:
    assert old in GUIDE_SAMPLE
    return GUIDE_SAMPLE.replace(old, new, 1)


ENTRY_ERRORS = [
    # (change to the guide sample, what the message says)
    (("qtype: asymmetric_quantized", "qtype: symmetric_quantized"), "only asymmetric_quantized"),
    (("        qtype: asymmetric_quantized\n", ""), "missing field 'qtype'"),
    (("qmethod: layer", "qmethod: tensor"), "qmethod 'tensor' is not layer or channel"),
    (("qmethod: layer", "qmethod: 3"), "qmethod must be a name"),
    (("dtype: int8", "dtype: uint8"), "unknown dtype 'uint8' (valid: int8, int16, float16"),
    (("        dtype: int8\n", ""), "missing field 'dtype'"),
    (("        scale:\n        - 0.023529411764705882\n", ""), "missing field 'scale'"),
    (("zero_point:", "zero_pt:"), "unknown field 'zero_pt'"),
    (("- 0.023529411764705882", "- 0.0"), "scale[0] = 0.0 is not a positive finite number"),
    (("- 0.023529411764705882", "- -0.5"), "scale[0] = -0.5 is not a positive"),
    (("- 0.023529411764705882", "- .inf"), "scale[0] = inf is not a positive"),
    (("- 0.023529411764705882", "- .nan"), "scale[0] = nan is not a positive"),
    (("- 0.023529411764705882", "- abc"), "scale[0] = 'abc' is not a number"),
    (("- 0.023529411764705882", "- true"), "scale[0] = True is not a number"),
    (("scale:\n        - 0.023529411764705882", "scale: 0.5"), "scale must be a list"),
    (("- -128", "- -129"), "zero_point[0] = -129 is outside int8's range [-128, 127]"),
    (("- -128", "- 1.5"), "zero_point[0] = 1.5 is not an integer"),
    (("dtype: int8", "dtype: int4"), "zero_point[0] = -128 is outside int4's range [-8, 7]"),
    (("- -128", "- -128\n        - 0"), "disagree in length (min 1, max 1, scale 1, zero_point 2)"),
    (("- 6.0", "- 6.0\n        ori_min: [0.0, 1.0]"), "disagree in length"),
    (("\n        - 0.023529411764705882", " []"), "scale empty: an int8 tensor needs values"),
    (("- 0.0", "- 7.0"), "min[0] = 7.0 is above max[0] = 6.0"),
    (("- 6.0", "- .inf"), "max[0] = inf is not finite"),
]


@pytest.mark.parametrize(("change", "message"), ENTRY_ERRORS, ids=[m for _, m in ENTRY_ERRORS])
def test_entry_errors_name_file_and_tensor(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = write_text(tmp_path, sample_with(*change))
    with pytest.raises(CompilerError) as raised:
        read_cfg(path)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: quantize_parameters: {TENSOR!r}: ")
    assert message in text


def test_layer_with_several_values(tmp_path: Path) -> None:
    text = GUIDE_SAMPLE
    for value in ("- 0.0\n", "- 6.0\n", "- 0.023529411764705882\n", "- -128\n"):
        text = text.replace(value, f"{value}        {value}")
    with pytest.raises(CompilerError, match="qmethod layer takes one value per list, found 2"):
        read_cfg(write_text(tmp_path, text))
    assert read_cfg(write_text(tmp_path, text.replace("qmethod: layer", "qmethod: channel")))


FILE_ERRORS = [
    ("custom_quantize_layers: [\n", ":2:1: not valid YAML"),
    ("- custom_quantize_layers\n", "expected a mapping with custom_quantize_layers and"),
    ("just text\n", "found str"),
    ("custom_quantize_layer: {}\n", "unknown top-level key 'custom_quantize_layer' (valid: cus"),
    ("custom_quantize_layers: [a]\n", "custom_quantize_layers must map tensor names"),
    ("quantize_parameters: 3\n", "quantize_parameters must map tensor names"),
    (
        "custom_quantize_layers:\n    Conv:0: float32\n",
        "custom_quantize_layers: 'Conv:0': unknown dtype 'float32' "
        "(valid: float16, int16, int8, int4)",
    ),
    ("custom_quantize_layers:\n    Conv:0: fp16\n", "unknown dtype 'fp16'"),
    ("custom_quantize_layers:\n    Conv:0:\n", "unknown dtype None"),
    ("custom_quantize_layers:\n    123: int8\n", "tensor name 123 is not a string; quote it"),
    (
        "custom_quantize_layers:\n    a: int8\n    a: float16\n",
        ":3:5: not valid YAML: duplicate key 'a'",
    ),
    ("quantize_parameters:\n    t: float16\n", "quantize_parameters: 't': expected a mapping"),
    ("quantize_parameters:\n    t:\n", "quantize_parameters: 't': expected a mapping"),
    ("quantize_parameters: !!python/object:os.system {}\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), FILE_ERRORS, ids=[m for _, m in FILE_ERRORS])
def test_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write_text(tmp_path, text)
    with pytest.raises(CompilerError) as raised:
        read_cfg(path)
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CompilerError, match=r"cannot read quantization config .*: No such file"):
        read_cfg(tmp_path / "absent.cfg")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.cfg"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(CompilerError, match="not UTF-8 text"):
        read_cfg(path)


def test_invalid_cfg_is_not_written(tmp_path: Path) -> None:
    path = write_text(tmp_path, GUIDE_SAMPLE)
    made = entry()
    made.scale = [-1.0]  # edited after construction
    with pytest.raises(ValueError, match="quantize_parameters: 't': scale"):
        write_cfg(QuantizationCfg(quantize_parameters={"t": made}), path)
    with pytest.raises(ValueError, match="dtype 'f32'"):
        write_cfg(QuantizationCfg({"t": "f32"}), path)
    assert path.read_text(encoding="utf-8") == GUIDE_SAMPLE


def test_constructor_validates() -> None:
    with pytest.raises(ValueError, match="only asymmetric_quantized"):
        entry(qtype="symmetric")
    with pytest.raises(ValueError, match="dtype 'u8'"):
        entry(dtype="u8")


# ---------------------------------------------------------------------- atomic writes


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_text(tmp_path, GUIDE_SAMPLE)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(backends.fileio.os, "fsync", disk_full)  # after the bytes are written
    with pytest.raises(OSError, match="No space left"):
        write_cfg(awkward_cfg(), path)
    assert path.read_text(encoding="utf-8") == GUIDE_SAMPLE
    assert os.listdir(tmp_path) == [path.name]  # no temporary file left behind
