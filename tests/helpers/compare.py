"""Comparing kernel outputs with reference outputs, for the kernel tests.

`assert_matches` is the one comparison: same type, dtype and shape, then values (floats within
tolerances, everything else exactly). `check_against_ort` runs a kernel and onnxruntime on the
same node and compares every output with it; `random_data` makes its inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tests.helpers.ort import run_node


def assert_matches(
    got: np.ndarray,
    want: np.ndarray,
    rtol: float = 0.0,
    atol: float = 0.0,
    equal_nan: bool = True,
) -> None:
    """`got` is an ndarray of `want`'s dtype and shape, with the same values.

    Floats with a non-zero tolerance are compared by `np.testing.assert_allclose(rtol, atol,
    equal_nan)`; everything else (other dtypes, or both tolerances 0) must be equal, as by
    `np.testing.assert_array_equal`, which takes NaNs in the same places as equal. `equal_nan`
    defaults to True, as in `assert_allclose`, so NaN handling is the same on both paths.
    """
    assert isinstance(got, np.ndarray), type(got)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    if want.dtype.kind == "f" and (rtol or atol):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=equal_nan)
    else:
        np.testing.assert_array_equal(got, want)


def random_data(shape: Sequence[int], dtype: Any = np.float32, seed: int = 0) -> np.ndarray:
    """Reproducible random values of `dtype`: booleans, integers in [-50, 50), or standard
    normal floats."""
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        return rng.random(shape) > 0.5
    if dt.kind in "iu":
        return rng.integers(-50, 50, size=shape).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def check_against_ort(
    fn: Callable[..., Any],
    op: str,
    inputs: Sequence[np.ndarray | None],
    attrs: dict[str, Any] | None = None,
    *,
    n_outputs: int = 1,
    constant_inputs: Sequence[int] = (),
    rtol: float = 0.0,
    atol: float = 0.0,
) -> tuple[np.ndarray, ...]:
    """Run the kernel `fn` and onnxruntime's `op` on the same inputs and attributes; the kernel
    must give as many outputs, each (after `np.asarray`) matching onnxruntime's by
    `assert_matches` with `rtol` and `atol` (exactly by default). Returns the kernel's outputs,
    as it returned them, in a tuple."""
    got = fn(*inputs, **(attrs or {}))
    got = got if isinstance(got, tuple) else (got,)
    want = run_node(op, inputs, attrs, n_outputs=n_outputs, constant_inputs=constant_inputs)
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want, strict=True):
        assert_matches(np.asarray(g), w, rtol=rtol, atol=atol)
    return got


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two tensors, flattened, in float64."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
