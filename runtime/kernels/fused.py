"""Kernels of the ops graph passes make that ONNX lacks: fused Conv / ConvTranspose / Gemm /
MatMul with their activations (and Conv's residual add), Swish, GLU.

A fused op computes exactly what its unfused ops compute, with the same kernels in the same
order, so fusing changes no bit of the result:

    Y = post_activation(activation(op(...)) + Z)

An activation is an ONNX op type with that op's attributes; Clip's bounds are the attributes
`min`/`max`, PRelu's slope the `slope` input.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.kernels.activation import clip, prelu, sigmoid
from runtime.kernels.conv import conv, conv_transpose
from runtime.kernels.linalg import gemm, matmul
from runtime.kernels.registry import KERNELS, KernelError, kernel

Attrs = dict[str, Any] | None


def apply_activation(
    y: np.ndarray, kind: str, attrs: Attrs, slope: np.ndarray | None = None
) -> np.ndarray:
    """`y` through the ONNX activation `kind` ("" for none)."""
    attrs = attrs or {}
    if not kind:
        return y
    if kind == "Clip":
        bound = {k: np.asarray(attrs[k], y.dtype) for k in ("min", "max") if k in attrs}
        return clip(y, bound.get("min"), bound.get("max"))
    if kind == "PRelu":
        if slope is None:
            raise KernelError("activation PRelu needs the slope input")
        return prelu(y, slope)
    fn = KERNELS.get(kind)
    if fn is None:
        raise KernelError(f"unknown activation {kind!r}")
    return fn(y, **attrs)


def _finish(
    y: np.ndarray, z: np.ndarray | None, slope: np.ndarray | None, activation: str,
    activation_attrs: Attrs, post_activation: str, post_activation_attrs: Attrs,
) -> np.ndarray:  # fmt: skip
    y = apply_activation(y, activation, activation_attrs, slope)
    if z is not None:
        y = y + z
    return apply_activation(y, post_activation, post_activation_attrs)


@kernel("FusedConv")
def fused_conv(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    z: np.ndarray | None = None,
    slope: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
    activation: str = "",
    activation_attrs: Attrs = None,
    post_activation: str = "",
    post_activation_attrs: Attrs = None,
) -> np.ndarray:
    y = conv(x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,
             kernel_shape=kernel_shape, pads=pads, strides=strides)  # fmt: skip
    return _finish(y, z, slope, activation, activation_attrs, post_activation,
                   post_activation_attrs)  # fmt: skip


@kernel("FusedConvTranspose")
def fused_conv_transpose(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray | None = None,
    slope: np.ndarray | None = None,
    *,
    auto_pad: str = "NOTSET",
    dilations: list[int] | None = None,
    group: int = 1,
    kernel_shape: list[int] | None = None,
    output_padding: list[int] | None = None,
    output_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
    activation: str = "",
    activation_attrs: Attrs = None,
    post_activation: str = "",
    post_activation_attrs: Attrs = None,
) -> np.ndarray:
    y = conv_transpose(x, w, b, auto_pad=auto_pad, dilations=dilations, group=group,
                       kernel_shape=kernel_shape, output_padding=output_padding,
                       output_shape=output_shape, pads=pads, strides=strides)  # fmt: skip
    return _finish(y, None, slope, activation, activation_attrs, post_activation,
                   post_activation_attrs)  # fmt: skip


@kernel("FusedGemm")
def fused_gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    slope: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,
    transB: int = 0,
    activation: str = "",
    activation_attrs: Attrs = None,
    post_activation: str = "",
    post_activation_attrs: Attrs = None,
) -> np.ndarray:
    y = gemm(a, b, c, alpha=alpha, beta=beta, transA=transA, transB=transB)
    return _finish(y, None, slope, activation, activation_attrs, post_activation,
                   post_activation_attrs)  # fmt: skip


@kernel("FusedMatMul")
def fused_matmul(
    a: np.ndarray,
    b: np.ndarray,
    slope: np.ndarray | None = None,
    *,
    activation: str = "",
    activation_attrs: Attrs = None,
    post_activation: str = "",
    post_activation_attrs: Attrs = None,
) -> np.ndarray:
    return _finish(matmul(a, b), None, slope, activation, activation_attrs, post_activation,
                   post_activation_attrs)  # fmt: skip


@kernel("Swish")
def swish(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    """x * sigmoid(alpha * x); for alpha = 1 exactly the Mul(x, Sigmoid(x)) it replaces."""
    scaled = x if alpha == 1.0 else (x * x.dtype.type(alpha))
    return x * sigmoid(scaled)


@kernel("GLU")
def glu(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    if x.shape[axis] % 2:
        raise KernelError(f"GLU: axis {axis} of shape {x.shape} has odd size")
    first, second = np.split(x, 2, axis=axis)
    return first * sigmoid(second)
