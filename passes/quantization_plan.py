"""What `lower-to-npu` quantizes with: a range per tensor (from calibration, a config or a
QDQ model), the dtypes, the weight method, the per-layer overrides, the input normalisation.

Like the weight table, the plan reaches the pass through a context variable
(`with using_plan(plan): ...`), because passes are frozen dataclasses of CLI options.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from dialects.npu import numerics as nx


@dataclass(frozen=True)
class TensorRange:
    """The float range chosen for a tensor; `fixed` parameters (from a config or a QDQ
    model) win over the range when their dtype is the one the tensor gets."""

    lo: float
    hi: float
    fixed: nx.QuantParams | None = None


@dataclass(frozen=True)
class InputNormalization:
    """RKNN's mean_values / std_values for one input, over `axis`."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    axis: int = 1


@dataclass(frozen=True)
class RoundedWeights:
    """A layer's integer weights for `source` (its float weights exactly as the lowering
    sees them), on the grid of `params`: weight rounding other than to nearest
    (`compiler.quantization.weight_rounding`)."""

    source: np.ndarray
    values: np.ndarray
    params: nx.QuantParams


@dataclass
class QuantPlan:
    ranges: dict[str, TensorRange]  # by ONNX tensor name
    dtype: str = "i8"  # activations: "i8" | "i16" | "f16"
    weight_dtype: str | None = None  # None: the activation dtype ("i4": int4 weights)
    per_channel: bool = True
    overrides: dict[str, str] = field(default_factory=dict)  # tensor name -> dtype
    normalization: dict[str, InputNormalization] = field(default_factory=dict)
    weight_params: dict[str, nx.QuantParams] = field(default_factory=dict)  # by weight name
    # integer weights rounded on the calibration data (weight_rounding.py), by weight name
    rounded_weights: dict[str, RoundedWeights] = field(default_factory=dict)
    # ops the user sends to the CPU (RKNN's op_target): ONNX output tensor or node names
    cpu_ops: frozenset[str] = frozenset()

    def on_cpu(self, names: list[str]) -> bool:
        """Whether an op with these node / fused-node / output names goes to the CPU."""
        return any(name in self.cpu_ops for name in names)

    def dtype_of(self, tensor: str) -> str:
        """The dtype the op producing `tensor` computes in."""
        return self.overrides.get(tensor, self.dtype)

    def weight_dtype_for(self, dtype: str) -> str:
        """Weights beside `dtype` activations: int4 where asked (w4a8, w4a16), else the
        activation dtype."""
        if dtype == "f16":
            return "i4" if self.weight_dtype == "i4" else "f16"
        return self.weight_dtype or dtype

    def params(self, tensor: str, dtype: str) -> nx.QuantParams | None:
        """Parameters of `tensor` in `dtype` (None when the plan has no range for it)."""
        if dtype in nx.FLOAT_DTYPES:
            return nx.QuantParams(dtype, np.float64(1.0), np.int64(0))
        found = self.ranges.get(tensor)
        if found is None:
            return None
        if found.fixed is not None and found.fixed.dtype == dtype:
            return found.fixed
        return nx.asymmetric_params(found.lo, found.hi, dtype)


_CURRENT: contextvars.ContextVar[QuantPlan | None] = contextvars.ContextVar("plan", default=None)


@contextlib.contextmanager
def using_plan(plan: QuantPlan) -> Iterator[QuantPlan]:
    token = _CURRENT.set(plan)
    try:
        yield plan
    finally:
        _CURRENT.reset(token)


def current_plan() -> QuantPlan:
    plan = _CURRENT.get()
    if plan is None:
        raise RuntimeError("no quantization plan in scope: wrap the call in `using_plan(plan)`")
    return plan
