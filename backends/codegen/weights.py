"""The constant arrays of a MAC-array op: its logical weights and bias (what the reference
executor computes with) and align-channels' zero-padded copies when present
(`backend.padded_weight` / `backend.padded_bias`, `dialects/npu/placement.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.dialects.builtin import DenseIntOrFPElementsAttr
from xdsl.ir import Attribute, SSAValue

from dialects.errors import CompilerError
from dialects.npu import ops as npu
from dialects.npu.placement import PADDED_BIAS, PADDED_WEIGHT
from dialects.onnx import ConstantOp, dense_to_numpy
from dialects.weights import WeightRefAttr, WeightTable


@dataclass(frozen=True)
class OpArrays:
    logical: np.ndarray  # weights as the op has them
    bias: np.ndarray  # int64 (a float16 layer: float32), one per logical output channel
    padded: np.ndarray  # align-channels' padded weights, else `logical`

    def folded_bias(self, input_zero_point: int) -> np.ndarray:
        """`bias[oc] - zp_in * Σ w[oc]` (int64): the MAC array sums raw `x * w`, so the
        input zero point moves into the bias (Mesa rkt_coefs.c `calculate_bias_correction`).
        A float16 layer's bias (float32) is returned as it is: floats have no zero point."""
        if self.bias.dtype.kind == "f":
            return self.bias
        sums = self.logical.reshape(self.logical.shape[0], -1).astype(np.int64).sum(axis=1)
        return self.bias - int(input_zero_point) * sums


def op_arrays(op: npu.Conv2dOp | npu.ConvTransposeOp | npu.FullyConnectedOp,
              weights: WeightTable) -> OpArrays:  # fmt: skip
    logical = constant(op.weight, weights, op)
    bias = _typed(constant(op.bias, weights, op)).reshape(-1)
    ref = op.attributes.get(PADDED_WEIGHT)
    padded = weights[ref] if isinstance(ref, WeightRefAttr) else logical
    if padded.shape[0] < logical.shape[0] or padded.shape[2:] != logical.shape[2:]:
        raise CompilerError(f"{op.describe()}: padded weights {padded.shape} vs {logical.shape}")
    bias_ref = op.attributes.get(PADDED_BIAS)
    if isinstance(bias_ref, WeightRefAttr):
        padded_bias = _typed(weights[bias_ref]).reshape(-1)
        if not np.array_equal(padded_bias[: bias.size], bias) or np.any(padded_bias[bias.size :]):
            raise CompilerError(f"{op.describe()}: the padded bias is not the bias zero-extended")
    return OpArrays(logical, bias, padded)


def _typed(bias: np.ndarray) -> np.ndarray:
    """An integer bias as int64, a float one (a float16 layer's) as float32."""
    return bias.astype(np.float32 if bias.dtype.kind == "f" else np.int64)


def constant(value: SSAValue, weights: WeightTable, op: npu.NpuOp) -> np.ndarray:
    owner = value.owner
    if not isinstance(owner, ConstantOp):
        raise CompilerError(f"{op.describe()}: expected constant weights")
    attr: Attribute = owner.value
    if isinstance(attr, DenseIntOrFPElementsAttr):
        return dense_to_numpy(attr)
    assert isinstance(attr, WeightRefAttr)
    return weights[attr]
