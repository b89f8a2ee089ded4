"""`align-channels`: zero-padded copies of the weights of `npu.conv2d` and
`npu.fully_connected` up to the chip's channel alignment (sdk_inventory §5.4,
`Target.alignment`; the chip is the module's `backend.chip`, rk3588 when absent).

- convolution (group 1): output channels to the "conv_out" alignment, input channels to
  "conv_in";
- depthwise convolution (group = input channels = output channels): the channels to the
  "depthwise" alignment (the padded op has as many groups as padded channels);
- fully connected: output channels (weight rows) to "conv_out".

Padded weights are 0, padded bias entries 0, and padded channels of per-channel weight
parameters get scale 1.0 and zero point 0, so a padded output channel computes the output
zero point and a padded input channel adds nothing, whatever the padding holds: the real
channels are bit for bit what the op computes (tests/passes/test_align_channels.py runs the
padded op on the reference executor).

The op itself is not changed: its operands keep the logical weights, its result the logical
channel count (the padded channels live in NC1HWC2's padding). The `npu` dialect says a
weight's rows are the result's channels (the fully_connected verifier checks it, the
reference executor relies on it for convolutions), so the padded arrays go into the weight
table under new names (`<weight>_aligned`, `<bias>_aligned`) and the op refers to them:

    backend.weight_out_channels  int       weight rows after padding
    backend.weight_in_channels   int       input channels the padded weights read
                                           (convolution: weight columns x group;
                                           fully connected: K, not padded)
    backend.padded_weight        #weights.ref<...>   the padded weight array
    backend.padded_bias          #weights.ref<...>   the padded bias array
    backend.padded_weight_quant  #npu.quant<...>     weight_quant over the padded rows

Ops that need no padding, ops on the CPU (`backend.target = "cpu"`), ops in a dtype the
chip does not compute, grouped (non-depthwise) convolutions, transposed convolutions and
ops aligned before are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.dialects.func import FuncOp
from xdsl.ir import SSAValue
from xdsl.passes import ModulePass

from backends.targets import Target, get_target
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.npu.attributes import QuantAttr
from dialects.onnx import ConstantOp
from dialects.weights import current_weights
from passes.report import note
from passes.rewrite import constant_value

PASS_NAME = "align-channels"


AlignedOp = npu.Conv2dOp | npu.FullyConnectedOp


@dataclass(frozen=True)
class Padding:
    """How far one op's weights grow."""

    out_channels: int  # weight rows
    in_channels: int  # input channels the weights read (weight columns x group)
    depthwise: bool = False


@dataclass(frozen=True)
class AlignChannels(ModulePass):
    """Zero-padded weight copies up to the chip's channel alignment (backend.padded_weight).

    Convolutions, depthwise convolutions and fully-connected ops; the op keeps its logical
    weights and result."""

    name = PASS_NAME

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        chip = get_target(pl.get_str(op, pl.CHIP))
        padded, zeros = 0, 0
        for func in op.ops:
            if not isinstance(func, FuncOp):
                continue
            for o in func.body.blocks[0].ops:
                if not isinstance(o, AlignedOp) or not wants_alignment(o):
                    continue
                padding = padding_for(o, chip)
                if padding is not None:
                    zeros += pad_op(o, padding)
                    padded += 1
        note(PASS_NAME, f"padded the weights of {padded} ops to {chip.name}'s channel "
                        f"alignment ({zeros} zero weights added)")  # fmt: skip


def wants_alignment(op: AlignedOp) -> bool:
    return pl.get_str(op, pl.TARGET) != "cpu" and pl.PADDED_WEIGHT not in op.attributes


def round_up(channels: int, alignment: int) -> int:
    return -(-channels // alignment) * alignment


def padding_for(op: AlignedOp, chip: Target) -> Padding | None:
    """The padded channel counts of `op` on `chip`; None when nothing grows (or the op is
    not one this pass aligns)."""
    dtype = op.quant.element
    if chip.supports(dtype) is not None:
        return None
    shape = npu.in_shape(op.weight)
    if isinstance(op, npu.FullyConnectedOp):
        rows, k = shape
        padding = Padding(round_up(rows, chip.alignment(dtype, "conv_out")), k)
    elif op.group.data == 1:
        padding = Padding(round_up(shape[0], chip.alignment(dtype, "conv_out")),
                          round_up(shape[1], chip.alignment(dtype, "conv_in")))  # fmt: skip
    elif op.group.data == npu.in_shape(op.input)[1] == shape[0] and shape[1] == 1:
        channels = round_up(shape[0], chip.alignment(dtype, "depthwise"))
        padding = Padding(channels, channels, depthwise=True)
    else:
        return None
    logical_in = shape[1] * (1 if isinstance(op, npu.FullyConnectedOp) else op.group.data)
    if (padding.out_channels, padding.in_channels) == (shape[0], logical_in):
        return None
    return padding


def padded_weight(w: np.ndarray, padding: Padding, fully_connected: bool) -> np.ndarray:
    """`w` ([O, I, kh, kw], depthwise [C, 1, kh, kw], fully connected [N, K]) with zero
    rows (and, for a group-1 convolution, zero columns) appended."""
    shape = list(w.shape)
    shape[0] = padding.out_channels
    if not fully_connected and not padding.depthwise:
        shape[1] = padding.in_channels
    out = np.zeros(shape, w.dtype)
    out[tuple(slice(0, n) for n in w.shape)] = w
    return out


def padded_quant(quant: QuantAttr, rows: int) -> QuantAttr:
    """Per-channel parameters over `rows` channels: scale 1.0, zero point 0 for the new
    ones. Per-tensor and float parameters are unchanged."""
    if quant.channel_axis is None or quant.is_float:
        return quant
    scales, zero_points = quant.scale_values, quant.zero_point_values
    extra = rows - len(scales)
    scales, zero_points = scales + [1.0] * extra, zero_points + [0] * extra
    return QuantAttr(quant.element, scales, zero_points, quant.channel_axis)


def pad_op(op: AlignedOp, padding: Padding) -> int:
    """Store the padded arrays and point `op` at them. Returns how many zero weights the
    padding added."""
    w, b = _constant(op.weight, op), _constant(op.bias, op)
    fully_connected = isinstance(op, npu.FullyConnectedOp)
    w_padded = padded_weight(w, padding, fully_connected)
    b_padded = np.zeros(padding.out_channels, b.dtype)
    b_padded[: b.size] = b.reshape(-1)
    table = current_weights()
    w_name = f"{_name(op.weight, op, 'weight')}_aligned"
    op.attributes[pl.PADDED_WEIGHT] = table.add(w_padded, w_name)
    op.attributes[pl.PADDED_BIAS] = table.add(b_padded, f"{_name(op.bias, op, 'bias')}_aligned")
    op.attributes[pl.PADDED_WEIGHT_QUANT] = padded_quant(op.weight_quant, padding.out_channels)
    pl.set_int(op, pl.WEIGHT_OUT_CHANNELS, padding.out_channels)
    pl.set_int(op, pl.WEIGHT_IN_CHANNELS, padding.in_channels)
    return int(w_padded.size - w.size)


def _constant(value: SSAValue, op: AlignedOp) -> np.ndarray:
    array = constant_value(value)
    if array is None:
        raise ValueError(f"{op.describe()}: {PASS_NAME} expects constant weights")
    return array


def _name(value: SSAValue, op: AlignedOp, role: str) -> str:
    owner = value.owner
    if isinstance(owner, ConstantOp) and owner.output_names:
        return owner.output_names[0]
    return f"{op.node_name or op.name}_{role}"
