"""RKNN's `config()` options and names -> ours (`QuantizeOptions`), checked when `config()`
is called, as RKNN checks them (research/sdk_inventory.md §1.1 table 1.1a, §2.2).

Every `config()` parameter of RKNN-Toolkit2 2.3 (and the later ones seen) is in `CONFIG`:
mapped (a `QuantizeOptions` field), accepted without effect (with the reason, logged), or
refused unless left at its default (`-1` with "not supported yet"). Unknown names and
unknown values are refused naming what is accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from backends.targets import DEFAULT_TARGET, get_target
from compiler.calibration import ALGORITHMS, InputPreprocess
from compiler.quantization.quantize import RKNN_QUANTIZED_DTYPES, QuantizeOptions
from runtime.api_support import ApiError

# RKNN quantized_dtype names we refuse, and why (the accepted ones: RKNN_QUANTIZED_DTYPES)
REFUSED_DTYPES = {
    "w16a16i_dfp": "dynamic fixed point is not supported (use w16a16i: int16, asymmetric)",
    "dynamic_fixed_point-i8": "dynamic fixed point is not supported",
    "dynamic_fixed_point-i16": "dynamic fixed point is not supported",
    "w8a16": "int8 weights with float16 activations are not supported yet",
}
METHODS = {"channel": True, "layer": False}  # quantized_method -> QuantizeOptions.per_channel
OP_TARGETS = ("cpu", "npu", "auto")  # 'gpu': no GPU runtime
MAX_CUSTOM_STRING = 1024  # bytes (rknn_api.h, RKNN_QUERY_CUSTOM_STRING)


@dataclass(frozen=True)
class Option:
    default: Any
    ours: str  # what it maps to, for the README table and `describe`
    kind: str = "mapped"  # mapped | ignored (accepted, no effect) | refused (unless default)


CONFIG: dict[str, Option] = {
    "mean_values": Option(None, "QuantizeOptions.preprocess[i].mean_values"),
    "std_values": Option(None, "QuantizeOptions.preprocess[i].std_values"),
    "quant_img_RGB2BGR": Option(False, "QuantizeOptions.preprocess[i].rgb2bgr"),
    "quantized_dtype": Option("w8a8", "QuantizeOptions.dtype / weight_dtype"),
    "quantized_algorithm": Option("normal", "QuantizeOptions.algorithm"),
    "quantized_method": Option("channel", "QuantizeOptions.per_channel"),
    "float_dtype": Option("float16", "float16 only (do_quantization=False: dtype f16)"),
    "optimization_level": Option(3, "QuantizeOptions.optimization_level"),
    "target_platform": Option(None, "QuantizeOptions.target (None: rk3588)"),
    "custom_string": Option(None, "container metadata 'custom_string'"),
    "op_target": Option(None, "QuantizeOptions.cpu_ops (the names mapped to 'cpu')"),
    "model_pruning": Option(
        False, "always on: all-zero channels are pruned at level >= 2", "ignored"
    ),
    "single_core_mode": Option(False, "a container runs on any core mask", "ignored"),
    "compress_weight": Option(False, "weights are stored uncompressed", "ignored"),
    "enable_flash_attention": Option(False, "no attention fusion yet", "ignored"),
    "dynamic_input": Option(None, "dynamic shapes", "refused"),
    "remove_weight": Option(False, "weight-sharing slave models", "refused"),
    "remove_reshape": Option(False, "removing I/O reshapes", "refused"),
    "quantize_weight": Option(False, "weight-only quantization of a float build", "refused"),
    "sparse_infer": Option(False, "sparse inference (rk3576)", "refused"),
    "quantized_hybrid_level": Option(0, "automatic hybrid levels", "refused"),
    "inputs_yuv_fmt": Option(None, "YUV inputs", "refused"),
    "auto_hybrid_cos_thresh": Option(0.98, "automatic hybrid quantization", "refused"),
    "auto_hybrid_euc_thresh": Option(None, "automatic hybrid quantization", "refused"),
}


def check_config(values: dict[str, Any]) -> list[str]:
    """Refuse unknown names and values (ApiError, one line); returns the notes to log for
    options accepted without effect."""
    notes = []
    for name, value in values.items():
        option = CONFIG.get(name)
        if option is None:
            raise ApiError(f"unknown option {name!r} (known: {', '.join(CONFIG)})")
        if value == option.default:
            continue
        if option.kind == "refused":
            raise ApiError(f"{name}={value!r}: {option.ours} not supported yet")
        if option.kind == "ignored":
            notes.append(f"{name}={value!r} accepted without effect: {option.ours}")
    _check_values(values)
    return notes


def _check_values(values: dict[str, Any]) -> None:
    dtype = values.get("quantized_dtype", "w8a8")
    if dtype in REFUSED_DTYPES:
        raise ApiError(f"quantized_dtype {dtype!r}: {REFUSED_DTYPES[dtype]}")
    if dtype not in RKNN_QUANTIZED_DTYPES:
        raise ApiError(
            f"quantized_dtype {dtype!r}: expected one of {', '.join(RKNN_QUANTIZED_DTYPES)}"
        )
    _one_of("quantized_algorithm", values.get("quantized_algorithm", "normal"), ALGORITHMS)
    _one_of("quantized_method", values.get("quantized_method", "channel"), tuple(METHODS))
    _one_of("float_dtype", values.get("float_dtype", "float16"), ("float16",))
    _one_of("optimization_level", values.get("optimization_level", 3), (0, 1, 2, 3))
    target = get_target(values.get("target_platform") or DEFAULT_TARGET)  # unknown: error
    reason = target.supports(*RKNN_QUANTIZED_DTYPES[dtype])
    if reason is not None:
        raise ApiError(f"quantized_dtype {dtype!r} on {target.name}: {reason}")
    _check_custom_string(values.get("custom_string"))
    cpu_ops(values.get("op_target"))


def _one_of(name: str, value: Any, accepted: Sequence[Any]) -> None:
    if value not in accepted:
        raise ApiError(f"{name} {value!r}: expected one of {', '.join(map(str, accepted))}")


def _check_custom_string(text: Any) -> None:
    if text is None:
        return
    if not isinstance(text, str):
        raise ApiError(f"custom_string: a str, not {type(text).__name__}")
    if len(text.encode()) > MAX_CUSTOM_STRING:
        raise ApiError(f"custom_string: {len(text.encode())} bytes, at most {MAX_CUSTOM_STRING}")


def cpu_ops(op_target: Any) -> frozenset[str]:
    """RKNN's `op_target` ({tensor name: 'cpu' | 'npu' | 'auto'}): the names kept on the
    CPU. 'npu' and 'auto' are where an op goes anyway (the NPU when it can run it)."""
    if op_target is None:
        return frozenset()
    if not isinstance(op_target, dict):
        raise ApiError(f"op_target: a dict {{tensor name: 'cpu'}}, not {type(op_target).__name__}")
    for name, where in op_target.items():
        if where not in OP_TARGETS:
            raise ApiError(
                f"op_target[{name!r}] = {where!r}: expected one of "
                f"{', '.join(OP_TARGETS)} (no GPU runtime)"
            )
    return frozenset(name for name, where in op_target.items() if where == "cpu")


def quantize_options(
    values: dict[str, Any], n_inputs: int, do_quantization: bool, progress: bool
) -> QuantizeOptions:
    """The options of `build` for a model with `n_inputs` inputs."""
    dtype, weight_dtype = RKNN_QUANTIZED_DTYPES[values.get("quantized_dtype", "w8a8")]
    if not do_quantization:
        dtype, weight_dtype = "f16", None  # RKNN's float build: float16 throughout
    return QuantizeOptions(
        dtype=dtype,
        weight_dtype=weight_dtype,
        algorithm=values.get("quantized_algorithm", "normal"),
        per_channel=METHODS[values.get("quantized_method", "channel")],
        optimization_level=values.get("optimization_level", 3),
        preprocess=preprocess(values, n_inputs),
        progress=progress,
        target=get_target(values.get("target_platform") or DEFAULT_TARGET).name,
        cpu_ops=cpu_ops(values.get("op_target")),
    )


def preprocess(values: dict[str, Any], n_inputs: int) -> list[InputPreprocess | None] | None:
    """mean_values / std_values (one list per input) and quant_img_RGB2BGR (one bool, or
    one per input) as `InputPreprocess` per input."""
    means = _per_input("mean_values", values.get("mean_values"), n_inputs)
    stds = _per_input("std_values", values.get("std_values"), n_inputs)
    swaps = values.get("quant_img_RGB2BGR", False)
    swaps = list(swaps) if isinstance(swaps, list | tuple) else [bool(swaps)] * n_inputs
    if len(swaps) != n_inputs:
        raise ApiError(
            f"quant_img_RGB2BGR gives {len(swaps)} values; the model has {n_inputs} inputs"
        )
    if means is None and stds is None and not any(swaps):
        return None
    return [
        InputPreprocess(means[i] if means else None, stds[i] if stds else None, bool(swaps[i]))
        for i in range(n_inputs)
    ]


def _per_input(name: str, value: Any, n_inputs: int) -> list[list[float]] | None:
    if value is None:
        return None
    rows = list(value)
    # RKNN 1.x took one flat list for a one-input model: accept it
    if rows and all(isinstance(v, int | float) for v in rows):
        rows = [rows]
    if len(rows) != n_inputs:
        raise ApiError(
            f"{name} gives values for {len(rows)} inputs; the model has {n_inputs} "
            f"(one list per input, e.g. [[128, 128, 128]])"
        )
    try:
        return [[float(v) for v in row] for row in rows]
    except (TypeError, ValueError):
        raise ApiError(f"{name} {value!r}: expected lists of numbers") from None
