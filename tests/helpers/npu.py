"""Helpers for the `lower-to-npu` and `npu` reference tests: small ONNX graphs (imported, and
the same graph for onnxruntime), ranges measured on the samples the tests then run, the
lowering under a plan, and the numerics contract re-derived by hand in plain numpy / Python
(round half away from zero, the RKNN range -> parameters formulas, the 15-bit mantissa and
shift, `round_shift`) so that expectations never come from `dialects/npu/numerics.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.npu.attributes import QuantAttr
from dialects.weights import using_weights
from passes.quantization_plan import QuantPlan, TensorRange, using_plan
from passes.rewrite import constant_value
from tests.helpers.ort import run_model
from tests.passes.helpers import clone, run_passes

QRANGE = {"i8": (-128, 127), "i16": (-32768, 32767), "i32": (-(2**31), 2**31 - 1)}

Input = tuple[str, Sequence[int]] | tuple[str, Sequence[int], int]


# ---------------------------------------------------------------------- graphs


def onnx_graph(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[Input],
    outputs: Sequence[str],
    inits: Mapping[str, np.ndarray] | None = None,
    opset: int = 21,
) -> onnx.ModelProto:
    """A model of `nodes`: inputs `(name, shape[, TensorProto elem type])` (float32 by
    default), outputs by name (shapes inferred), initializers by name."""
    graph = helper.make_graph(
        list(nodes),
        "test",
        [
            helper.make_tensor_value_info(
                i[0], i[2] if len(i) > 2 else TensorProto.FLOAT, list(i[1])
            )
            for i in inputs
        ],
        [helper.make_empty_tensor_value_info(n) for n in outputs],
        initializer=[numpy_helper.from_array(np.asarray(a), n) for n, a in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def import_graph(proto: onnx.ModelProto, passes: str = "") -> IRModel:
    model = import_onnx(proto)
    if passes:
        run_passes(model, passes)
    return model


def ort(proto: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """onnxruntime (no graph optimizations) on `proto`."""
    return run_model(proto, dict(feeds))


def samples(model: IRModel, count: int = 2, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in model.inputs}
        for _ in range(count)
    ]


def measured_ranges(
    model: IRModel,
    feeds: Sequence[Mapping[str, np.ndarray]],
) -> dict[str, TensorRange]:
    """Min/max of every float tensor (inputs included) over `feeds`: calibration on exactly
    the samples the tests run, so nothing is clipped by the range."""
    interpreter = Interpreter(model)
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    for feed in feeds:
        for name, value in {**interpreter.run(feed, capture=True).tensors, **feed}.items():
            if np.asarray(value).dtype.kind != "f":
                continue
            lo[name] = min(lo.get(name, np.inf), float(np.min(value)))
            hi[name] = max(hi.get(name, -np.inf), float(np.max(value)))
    return {name: TensorRange(lo[name], hi[name]) for name in lo}


def lower(
    model: IRModel,
    ranges: Mapping[str, TensorRange],
    **plan_options,
) -> tuple[IRModel, list[str]]:
    """A lowered copy of `model` under a plan with `ranges`, and the pass notes."""
    plan = QuantPlan(dict(ranges), **plan_options)
    after = clone(model)
    with using_plan(plan):
        report = run_passes(after, "lower-to-npu,dce")
    return after, report.notes


def body(model: IRModel) -> list:
    return [op for op in model.main.body.blocks[0].ops if op.name != "onnx.Constant"]


def names(model: IRModel) -> list[str]:
    return [op.name for op in body(model)]


def only(model: IRModel, cls: type):
    (found,) = [op for op in body(model) if isinstance(op, cls)]
    return found


def const(model: IRModel, value) -> np.ndarray:
    with using_weights(model.weights):
        array = constant_value(value)
    assert array is not None
    return array


def cpu_notes(notes: Sequence[str]) -> list[str]:
    return [n for n in notes if "CPU:" in n]


# ---------------------------------------------------------------------- the contract, by hand


def rha(x) -> np.ndarray:
    """Round half away from zero (RKNN formula 6-1), as int64."""
    x = np.asarray(x, np.float64)
    return np.where(x >= 0, np.floor(x + 0.5), -np.floor(-x + 0.5)).astype(np.int64)


def asym(lo: float, hi: float, dtype: str = "i8") -> tuple[float, int]:
    """RKNN formulas 6-4 / 6-5: the range widened to hold 0, scale = (hi - lo) / (qmax -
    qmin), zero point = qmin - round(lo / scale)."""
    qmin, qmax = QRANGE[dtype]
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin)
    return scale, int(np.clip(qmin - int(rha(lo / scale)), qmin, qmax))


def quantize(real, scale, zero_point, dtype: str = "i8") -> np.ndarray:
    """clamp(round(real / scale) + zp), int64; `scale`/`zero_point` broadcast."""
    qmin, qmax = QRANGE[dtype]
    return np.clip(rha(np.asarray(real, np.float64) / scale) + zero_point, qmin, qmax)


def dequantize(q, scale, zero_point) -> np.ndarray:
    return (np.asarray(q, np.int64) - zero_point) * np.asarray(scale, np.float64)


def integers(real: np.ndarray, quant: QuantAttr) -> np.ndarray:
    """The integers behind the reals the interpreter reports for a quantized tensor
    (`(q - zp) * scale` in float32: far closer than 0.5 to an integer after / scale)."""
    params = quant.params()
    q = np.asarray(real, np.float64) / params.scale + params.zero_point
    assert np.abs(q - np.rint(q)).max() < 1e-2
    return np.rint(q).astype(np.int64)


def mantissa_shift(m: float) -> tuple[int, int]:
    """The DPU's fixed point: M in [2**14, 2**15) and S with m ~= M * 2**-S (M rounded half
    away from zero; a mantissa that rounds up to 2**15 halves and the shift drops)."""
    fraction, exponent = math.frexp(m)
    mant = int(rha(fraction * 2**15))
    if mant == 2**15:
        mant, exponent = mant // 2, exponent + 1
    return mant, 15 - exponent


def round_shift(x: int, shift: int) -> int:
    """x * 2**-shift rounded half away from zero, exact (Python integers)."""
    if shift == 0:
        return x
    magnitude = (abs(x) + (1 << (shift - 1))) >> shift
    return -magnitude if x < 0 else magnitude


def conv_acc(
    x_q: np.ndarray,
    zp: int,
    w_q: np.ndarray,
    b_q: np.ndarray,
    pads: Sequence[int] = (0, 0, 0, 0),
    strides: Sequence[int] = (1, 1),
) -> np.ndarray:
    """Σ (x - zp) * w + bias by direct loops (a padded element is the zero point), int64;
    pads are [top, left, bottom, right]."""
    n, c, h, w = x_q.shape
    oc, _, kh, kw = w_q.shape
    top, left, bottom, right = pads
    xc = np.zeros((n, c, h + top + bottom, w + left + right), np.int64)
    xc[:, :, top : top + h, left : left + w] = x_q.astype(np.int64) - zp
    oh = (h + top + bottom - kh) // strides[0] + 1
    ow = (w + left + right - kw) // strides[1] + 1
    out = np.zeros((n, oc, oh, ow), np.int64)
    for o in range(oc):
        for i in range(oh):
            for j in range(ow):
                window = xc[
                    :, :, i * strides[0] : i * strides[0] + kh, j * strides[1] : j * strides[1] + kw
                ]
                out[:, o, i, j] = (window * w_q[o].astype(np.int64)).sum(axis=(1, 2, 3)) + int(
                    b_q[o]
                )
    return out
