"""Reference kernels for ONNX elementwise ops (opset 21): arithmetic, math functions,
comparisons, logic, Where and the NaN/Inf tests.

All binary and variadic ops use numpy (multidirectional) broadcasting, which is exactly ONNX's
rule. Output dtypes follow the ONNX schemas: the inputs' common type T for arithmetic, bool for
comparisons and predicates, the base's type for Pow. Integer arithmetic wraps like C.

This module also holds `array_kernel`, the registration decorator the other kernel modules of
this family (activation, reduce, quantize) share.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from runtime.kernels.registry import Kernel, KernelError, kernel

Ufunc = Callable[..., Any]


def array_kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    """`registry.kernel`, plus two guarantees every caller relies on.

    * Outputs are always ndarrays: numpy ufuncs and reductions return numpy *scalars* for 0-d
      operands, and a scalar has no `.shape` contract with the interpreter.
    * Floating-point exceptions (overflow in exp, 0/0, ...) are silenced: ONNX specifies IEEE
      results (inf, nan), so numpy's RuntimeWarnings would only be noise.
    """

    def register(fn: Kernel) -> Kernel:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with np.errstate(all="ignore"):
                out = fn(*args, **kwargs)
            if isinstance(out, tuple):
                return tuple(np.asarray(o) for o in out)
            return np.asarray(out)

        return kernel(*op_types)(run)

    return register


def require_float(op: str, *arrays: np.ndarray) -> None:
    """Reject non-float inputs of float-only ops (numpy would silently compute in float64)."""
    for a in arrays:
        if a.dtype.kind != "f":
            raise KernelError(f"{op}: input dtype {a.dtype} is not supported (float types only)")


def same_dtype(op: str, *arrays: np.ndarray) -> np.dtype:
    """The common ONNX type T; numpy would promote mismatched inputs instead of rejecting them."""
    dtype = arrays[0].dtype
    for a in arrays[1:]:
        if a.dtype != dtype:
            raise KernelError(f"{op}: inputs have different dtypes ({dtype} and {a.dtype})")
    return dtype


# ---------------------------------------------------------------------------------- arithmetic


def _make_binary(op: str, ufunc: Ufunc) -> Kernel:
    @array_kernel(op)
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        same_dtype(op, a, b)
        return ufunc(a, b)

    run.__name__ = run.__qualname__ = op.lower()
    return run


add = _make_binary("Add", np.add)
sub = _make_binary("Sub", np.subtract)
mul = _make_binary("Mul", np.multiply)


def _check_int_divisor(op: str, b: np.ndarray) -> None:
    # C integer division by zero traps (onnxruntime crashes); refuse instead of inventing a value.
    if not np.all(b):
        raise KernelError(f"{op}: integer division by zero")


@array_kernel("Div")
def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = same_dtype("Div", a, b)
    if dtype.kind == "f":
        return np.divide(a, b)
    if dtype.kind not in "iu":
        raise KernelError(f"Div: input dtype {dtype} is not supported")
    _check_int_divisor("Div", b)
    q = np.floor_divide(a, b)
    if dtype.kind == "i":
        # numpy floors; C truncates toward zero, which differs when the division is inexact and
        # the operands have opposite signs.
        q += (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
    return q


@array_kernel("Mod")
def mod(a: np.ndarray, b: np.ndarray, *, fmod: int = 0) -> np.ndarray:
    dtype = same_dtype("Mod", a, b)
    if dtype.kind == "f":
        if not fmod:
            raise KernelError("Mod: fmod must be 1 for floating-point inputs")
        return np.fmod(a, b)
    if dtype.kind not in "iu":
        raise KernelError(f"Mod: input dtype {dtype} is not supported")
    _check_int_divisor("Mod", b)
    # fmod=1: C fmod, the sign of the dividend; fmod=0: Python %, the sign of the divisor.
    return np.fmod(a, b) if fmod else np.remainder(a, b)


@array_kernel("Pow")
def pow_(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iuf" or y.dtype.kind not in "iuf":
        raise KernelError(f"Pow: dtypes {x.dtype} ** {y.dtype} are not supported")
    if x.dtype.kind == "f":
        if y.ndim == 0 and y == 2:
            return np.square(x)  # exact, and by far the most common exponent
        if y.dtype == x.dtype or y.dtype.kind != "f":
            return np.power(x, y.astype(x.dtype, copy=False))
        # Mixed float widths: pow in the wider type, rounded once to the base's type.
        wide = np.promote_types(x.dtype, y.dtype)
        return np.power(x.astype(wide), y.astype(wide)).astype(x.dtype)
    if y.dtype.kind in "iu" and np.all(y >= 0):
        return np.power(x.astype(np.int64), y.astype(np.int64)).astype(x.dtype)
    # Integer base with a fractional or negative exponent: onnxruntime evaluates std::pow in
    # double and truncates the result back to the base's integer type.
    return np.power(x.astype(np.float64), y.astype(np.float64)).astype(x.dtype)


# ------------------------------------------------------------------------------- unary maths

_FLOAT_UNARY: dict[str, Ufunc] = {
    "Sqrt": np.sqrt,
    "Exp": np.exp,
    "Log": np.log,
    "Reciprocal": np.reciprocal,
    "Floor": np.floor,
    "Ceil": np.ceil,
    "Round": np.rint,  # rint rounds half to even, as ONNX Round requires
    "Sin": np.sin,
    "Cos": np.cos,
    "Tan": np.tan,
    "Asin": np.arcsin,
    "Acos": np.arccos,
    "Atan": np.arctan,
    "Sinh": np.sinh,
    "Cosh": np.cosh,
    "Asinh": np.arcsinh,
    "Acosh": np.arccosh,
    "Atanh": np.arctanh,
}

_NUMERIC_UNARY: dict[str, Ufunc] = {"Abs": np.abs, "Neg": np.negative, "Sign": np.sign}


def _make_unary(op: str, ufunc: Ufunc, float_only: bool) -> Kernel:
    @array_kernel(op)
    def run(x: np.ndarray) -> np.ndarray:
        if float_only:
            require_float(op, x)
        elif x.dtype.kind not in "iuf":
            raise KernelError(f"{op}: input dtype {x.dtype} is not supported")
        return ufunc(x)

    run.__name__ = run.__qualname__ = op.lower()
    return run


UNARY_KERNELS: dict[str, Kernel] = {
    **{op: _make_unary(op, fn, float_only=True) for op, fn in _FLOAT_UNARY.items()},
    **{op: _make_unary(op, fn, float_only=False) for op, fn in _NUMERIC_UNARY.items()},
}


# ------------------------------------------------------------------------------------ variadic


def _fold(op: str, ufunc: Ufunc, inputs: tuple[np.ndarray, ...]) -> np.ndarray:
    if not inputs:
        raise KernelError(f"{op}: needs at least one input")
    same_dtype(op, *inputs)
    if len(inputs) == 1:
        return inputs[0].copy()
    acc = np.asarray(ufunc(inputs[0], inputs[1]))  # 0-d operands give a scalar, not an array
    for x in inputs[2:]:
        # Accumulate in place unless this operand broadcasts the result to a bigger shape.
        if np.broadcast_shapes(acc.shape, x.shape) == acc.shape:
            ufunc(acc, x, out=acc)
        else:
            acc = ufunc(acc, x)
    return acc


@array_kernel("Max")
def max_(*inputs: np.ndarray) -> np.ndarray:
    return _fold("Max", np.maximum, inputs)  # np.maximum propagates NaN, as onnxruntime does


@array_kernel("Min")
def min_(*inputs: np.ndarray) -> np.ndarray:
    return _fold("Min", np.minimum, inputs)


@array_kernel("Sum")
def sum_(*inputs: np.ndarray) -> np.ndarray:
    return _fold("Sum", np.add, inputs)


@array_kernel("Mean")
def mean(*inputs: np.ndarray) -> np.ndarray:
    require_float("Mean", *inputs)
    acc = _fold("Mean", np.add, inputs)
    acc /= len(inputs)
    return acc


# ------------------------------------------------------------------------ comparison and logic


def _make_compare(op: str, ufunc: Ufunc) -> Kernel:
    @array_kernel(op)
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        same_dtype(op, a, b)
        # object (string) operands make numpy return an object array
        return np.asarray(ufunc(a, b), dtype=np.bool_)

    run.__name__ = run.__qualname__ = op.lower()
    return run


equal = _make_compare("Equal", np.equal)
greater = _make_compare("Greater", np.greater)
greater_or_equal = _make_compare("GreaterOrEqual", np.greater_equal)
less = _make_compare("Less", np.less)
less_or_equal = _make_compare("LessOrEqual", np.less_equal)


def _require_bool(op: str, *arrays: np.ndarray) -> None:
    for a in arrays:
        if a.dtype != np.bool_:
            raise KernelError(f"{op}: input dtype {a.dtype} is not supported (bool only)")


@array_kernel("Not")
def not_(x: np.ndarray) -> np.ndarray:
    _require_bool("Not", x)
    return np.logical_not(x)


def _make_logic(op: str, ufunc: Ufunc) -> Kernel:
    @array_kernel(op)
    def run(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _require_bool(op, a, b)
        return ufunc(a, b)

    run.__name__ = run.__qualname__ = op.lower()
    return run


and_ = _make_logic("And", np.logical_and)
or_ = _make_logic("Or", np.logical_or)
xor = _make_logic("Xor", np.logical_xor)


@array_kernel("BitShift")
def bit_shift(x: np.ndarray, y: np.ndarray, *, direction: str | None = None) -> np.ndarray:
    dtype = same_dtype("BitShift", x, y)
    if dtype.kind != "u":
        raise KernelError(f"BitShift: input dtype {dtype} is not supported (unsigned only)")
    if direction == "LEFT":
        return np.left_shift(x, y)
    if direction == "RIGHT":
        return np.right_shift(x, y)
    raise KernelError(f"BitShift: direction must be 'LEFT' or 'RIGHT', got {direction!r}")


@array_kernel("Where")
def where(condition: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    _require_bool("Where", condition)
    same_dtype("Where", x, y)
    return np.where(condition, x, y)


@array_kernel("IsNaN")
def is_nan(x: np.ndarray) -> np.ndarray:
    require_float("IsNaN", x)
    return np.isnan(x)


@array_kernel("IsInf")
def is_inf(x: np.ndarray, *, detect_negative: int = 1, detect_positive: int = 1) -> np.ndarray:
    require_float("IsInf", x)
    if detect_negative and detect_positive:
        return np.isinf(x)
    if detect_positive:
        return x == np.inf
    if detect_negative:
        return x == -np.inf
    return np.zeros(x.shape, dtype=np.bool_)
