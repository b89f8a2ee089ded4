"""Error-compensating weight rounding on the calibration data (GPTQ, Frantar et al., 2023).

Rounding each weight to the nearest grid point minimises the error of the weights, not of
the layer's output. GPTQ rounds the input columns of a layer's weight matrix one at a time
and moves each rounding error onto the columns not yet rounded, in the proportions the
layer's inputs make cheapest: it minimises `||(W - Q) X||^2` over the calibration inputs `X`
(one row of `W` per output channel, one column per input patch element), through the
inverse of `H = X X^T`. The grid is the one rounding to nearest uses (symmetric, per output
channel or per tensor, scale from the weights' absolute maximum), so the codegen and the
numerics contract are unchanged: only which integer each weight gets differs.

Measured on the zoo (README, "Weight rounding"): it pays most for int4 weights (resnet18
w4a16: output cosine 0.971 -> 0.999) and little for int8, where activation rounding
dominates (mobilenetv2: 0.979 -> 0.984); so `QuantizeOptions.weight_rounding="auto"` uses it
for int4 weights when a dataset is given, and "gptq" asks for it with int8 too.

Covered: Conv (any group, stride, dilation, padding) and Gemm/MatMul with a constant 2-D
weight, in the float-optimized IR the lowering reads. ConvTranspose keeps nearest rounding.
A classifier or squeeze-excitation layer sees one input vector per sample, so with a few
samples its `H` has low rank (the damping keeps it invertible) and its rounding fits those
samples; inputs unlike them can lose (README: ppocr_mobile_v2_cls, int8, 23 images).
`H` takes (columns)^2 float64 per layer (a 3x3 conv over 512 channels: 170 MB), all layers at
once while the samples run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm
from xdsl.ir import BlockArgument, SSAValue

from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from dialects.npu import numerics as nx
from dialects.onnx import OnnxOp
from dialects.weights import using_weights
from passes.quantization_plan import RoundedWeights
from passes.rewrite import constant_value, weight_name
from runtime.kernels.conv import pad_spatial, resolve_padding, spatial_ints, window_view

# "auto": gptq for int4 weights when there is a calibration dataset, else nearest
ROUNDINGS = ("auto", "nearest", "gptq")
# H's diagonal is raised by this share of its mean: columns the samples barely excite (or
# a rank-deficient H, fewer patches than columns) stay well conditioned (GPTQ's default).
DAMPING = 0.01
BLOCK_COLUMNS = 128
CONV_TYPES = ("Conv", "FusedConv")
GEMM_TYPES = ("Gemm", "FusedGemm", "MatMul", "FusedMatMul")


@dataclass
class _Layer:
    """A layer GPTQ rounds: where its input comes from, its weights, their grouping."""

    input_name: str
    weights: np.ndarray  # as the lowering quantizes them: conv [O, I/g, kh, kw], gemm [N, K]
    name: str  # the weight's ONNX name (the lowering's key)
    groups: int
    attributes: dict[str, object]

    def patches(self, x: np.ndarray) -> np.ndarray:
        """The layer's input as [groups, patches, columns], columns in weight order."""
        if self.weights.ndim == 2:
            return x.reshape(1, -1, x.shape[-1]).astype(np.float32)
        return _conv_patches(x, self.weights.shape, self.attributes, self.groups)


def round_weights(
    model: IRModel,
    samples: Iterable[Mapping[str, np.ndarray]],
    dtype: str,
    per_channel: bool,
    progress: bool = True,
) -> dict[str, RoundedWeights]:
    """GPTQ-rounded `dtype` ("i8" or "i4") weights of every covered layer of the float
    `model` (float-optimized, not lowered), from its inputs over `samples` (normalised
    feeds), by weight name."""
    with using_weights(model.weights):
        layers = _layers(model)
    if not layers:
        return {}
    hessians = _hessians(model, layers, samples, progress)
    return {
        layer.name: _round_layer(layer, hessians[layer.name], dtype, per_channel)
        for layer in layers
    }


def gptq(weights: np.ndarray, hessian: np.ndarray, scale: np.ndarray, qmax: int,
         damping: float = DAMPING) -> np.ndarray:  # fmt: skip
    """Integers `Q` in [-qmax, qmax] for `weights` [groups, rows, columns] (rows: output
    channels, scale [groups, rows]) minimising `||(W - Q*scale) X||^2` greedily, column by
    column, for `hessian` = X X^T [groups, columns, columns], its diagonal raised by
    `damping` times its mean."""
    w = weights.astype(np.float64).copy()
    h = hessian.astype(np.float64).copy()
    columns = w.shape[2]
    index = np.arange(columns)
    diagonal = h[:, index, index]  # a copy (fancy indexing)
    # inputs that were always 0 on the samples: rounded to nearest, no error moved onto
    # them (GPTQ zeroes their weights, but an input dead on a few samples is not dead)
    diagonal[diagonal == 0] = 1.0
    h[:, index, index] = diagonal + damping * diagonal.mean(axis=1, keepdims=True)
    upper = inverse_upper_factor(h)
    scale = scale[:, :, None]
    q = np.zeros(w.shape, np.int64)
    # GPTQ's lazy batches: errors spread within a block column by column, onto the columns
    # after it once per block (one matrix product instead of a sweep per column)
    for start in range(0, columns, BLOCK_COLUMNS):
        end = min(start + BLOCK_COLUMNS, columns)
        errors = np.zeros((*w.shape[:2], end - start))
        for i in range(start, end):
            column = w[:, :, i : i + 1]
            q[:, :, i : i + 1] = np.clip(nx.round_half_away(column / scale), -qmax, qmax)
            error = (column - q[:, :, i : i + 1] * scale) / upper[:, i, i][:, None, None]
            w[:, :, i + 1 : end] -= error * upper[:, i : i + 1, i + 1 : end]
            errors[:, :, i - start] = error[:, :, 0]
        w[:, :, end:] -= errors @ upper[:, start:end, end:]
    return q


def inverse_upper_factor(h: np.ndarray) -> np.ndarray:
    """The upper Cholesky factor `U` of `H^-1` (`U^T U = H^-1`; row i holds how column i's
    rounding error spreads) for symmetric positive definite `h` [groups, n, n], without
    forming `H^-1`: with `J` the order reversal, `J H J = M M^T` (Cholesky) gives
    `U = J M^-1 J`. One factorisation and one triangular inverse instead of a general
    inverse and a second factorisation: 2.3x faster at n = 4608 (a 3x3 conv over 512
    channels)."""
    lower = np.linalg.cholesky(h[:, ::-1, ::-1])
    return np.ascontiguousarray(_lower_inverse(lower)[:, ::-1, ::-1])


def _lower_inverse(m: np.ndarray, block: int = 256) -> np.ndarray:
    """Inverse of lower-triangular `m` [..., n, n], by halves: [[A, 0], [B, C]]^-1 =
    [[A^-1, 0], [-C^-1 B A^-1, C^-1]] (matrix products instead of a general inverse)."""
    n = m.shape[-1]
    if n <= block:
        return np.tril(np.linalg.inv(m))  # exact zeros above (LU leaves rounding noise)
    k = n // 2
    a, c = _lower_inverse(m[..., :k, :k], block), _lower_inverse(m[..., k:, k:], block)
    out = np.zeros_like(m)
    out[..., :k, :k], out[..., k:, k:] = a, c
    out[..., k:, :k] = -(c @ (m[..., k:, :k] @ a))
    return out


def _round_layer(layer: _Layer, hessian: np.ndarray, dtype: str,
                 per_channel: bool) -> RoundedWeights:  # fmt: skip
    w = layer.weights.astype(np.float64)
    params = nx.weight_params(w, dtype, per_channel)
    rows = w.shape[0]
    scale = np.broadcast_to(params.scale, (rows,)).reshape(layer.groups, -1)
    grouped = w.reshape(layer.groups, rows // layer.groups, -1)
    q = gptq(grouped, hessian, scale, nx.qrange(dtype)[1])
    return RoundedWeights(layer.weights, q.reshape(w.shape), params)


def _layers(model: IRModel) -> list[_Layer]:
    layers = []
    for op in model.main.body.blocks[0].ops:
        if isinstance(op, OnnxOp) and op.op_type in CONV_TYPES + GEMM_TYPES:
            layer = _layer(model, op)
            if layer is not None:
                layers.append(layer)
    return layers


def _layer(model: IRModel, op: OnnxOp) -> _Layer | None:
    x, w_value = op.onnx_inputs()[:2]
    w = constant_value(w_value)
    if x is None or w is None:
        return None
    attrs = op.attribute_values(model.weights)
    name = weight_name(w_value, op, "W")
    if op.op_type in CONV_TYPES:
        if w.ndim != 4:
            return None
        return _Layer(_name_of(model, x), w, name, int(attrs.get("group", 1)), attrs)
    if w.ndim != 2 or attrs.get("transA", 0):
        return None
    # as lower_gemm builds it: [N, K], alpha applied
    weights = (w if attrs.get("transB", 0) else w.T).astype(np.float64)
    weights = weights * float(attrs.get("alpha", 1.0))
    return _Layer(_name_of(model, x), weights, name, 1, attrs)


def _name_of(model: IRModel, value: SSAValue) -> str:
    if isinstance(value, BlockArgument):
        return model.inputs[value.index].name
    owner = value.owner
    assert isinstance(owner, OnnxOp)
    return owner.output_names[value.index]


def _hessians(model: IRModel, layers: list[_Layer], samples: Iterable[Mapping[str, np.ndarray]],
              progress: bool) -> dict[str, np.ndarray]:  # fmt: skip
    """`H = X X^T` per layer, by weight name ([groups, columns, columns])."""
    interpreter = Interpreter(model)
    wanted = {layer.input_name for layer in layers}
    hessians: dict[str, np.ndarray] = {}
    for sample in tqdm(samples, desc="weight rounding (inputs)", unit="sample",
                       disable=not progress):  # fmt: skip
        tensors = dict(interpreter.run(sample, capture=wanted).tensors)
        tensors.update(sample)
        for layer in layers:
            patches = layer.patches(np.asarray(tensors[layer.input_name]))
            product = np.matmul(patches.transpose(0, 2, 1), patches).astype(np.float64)
            if layer.name in hessians:
                hessians[layer.name] += product
            else:
                hessians[layer.name] = product
    return hessians


def _conv_patches(x: np.ndarray, shape: tuple[int, ...], values: Mapping[str, object],
                  groups: int) -> np.ndarray:  # fmt: skip
    """im2col of an NCHW input as the Conv kernel builds it (`runtime.kernels.conv`):
    [groups, images x output pixels, (C/groups) * kh * kw]."""
    kernel = shape[2:]
    strides = spatial_ints("strides", values.get("strides"), 2, 1)
    dilations = spatial_ints("dilations", values.get("dilations"), 2, 1)
    begin, end, out = resolve_padding(str(values.get("auto_pad", "NOTSET")), x.shape[2:], kernel,
                                      strides, dilations, values.get("pads"))  # fmt: skip
    padded = pad_spatial(x.astype(np.float32, copy=False), begin, end)
    windows = window_view(padded, kernel, strides, dilations, out)  # (N, C, kh, kw, oh, ow)
    images, pixels = x.shape[0], out[0] * out[1]
    columns = np.ascontiguousarray(windows).reshape(images, groups, -1, pixels)
    return columns.transpose(1, 0, 3, 2).reshape(groups, images * pixels, -1)
