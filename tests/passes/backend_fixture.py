"""The attributes partition-cpu and assign-layout would set, set by hand so that the tile and
plan-memory tests do not depend on those passes: `backend.chip` on the module, and on every
op `backend.target` ("npu" for `npu` ops, "cpu" for float ops, for ops named in `cpu` and,
as partition-cpu does, for the conversions at the model's edges: an `npu.quantize` of a
model input, an `npu.dequantize` the function returns),
`backend.layout` and `backend.c2` (NC1HWC2 with the chip's C2 for a 4-D result of an NPU op
in an NPU dtype, NCHW for other 4-D results, UNDEFINED otherwise).
"""

from __future__ import annotations

from collections.abc import Collection

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.dialects.func import ReturnOp
from xdsl.ir import BlockArgument, Operation

from backends.targets import get_target
from compiler.ir_model import IRModel
from dialects.npu import ops as npu
from dialects.npu import placement as pl
from dialects.onnx import ConstantOp


def place(model: IRModel, chip: str = "rk3588", cpu: Collection[str] = ()) -> IRModel:
    """Set the placement and layout attributes on `model` in place; `cpu` names ops (by
    ONNX node or first output name) to put on the CPU. Returns `model`."""
    target = get_target(chip)
    model.module.attributes[pl.CHIP] = StringAttr(target.name)
    for op in compute_ops(model):
        on_npu = isinstance(op, npu.NpuOp) and not (
            {op.node_name, *op.output_names} & set(cpu) or at_the_edge(op)
        )
        pl.set_str(op, pl.TARGET, "npu" if on_npu else "cpu")
        result = op.results[0].type
        assert isinstance(result, TensorType)
        dtype = getattr(op, "quant", None)
        if len(result.get_shape()) != 4:
            pl.set_str(op, pl.LAYOUT, "UNDEFINED")
        elif on_npu and dtype is not None and dtype.element in target.activation_dtypes:
            pl.set_str(op, pl.LAYOUT, "NC1HWC2")
            pl.set_int(op, pl.C2, target.c2(dtype.element))
        else:
            pl.set_str(op, pl.LAYOUT, "NCHW")
    return model


def at_the_edge(op: Operation) -> bool:
    if isinstance(op, npu.QuantizeOp):
        return isinstance(op.input, BlockArgument)
    return isinstance(op, npu.DequantizeOp) and any(
        isinstance(use.operation, ReturnOp) for use in op.output.uses
    )


def compute_ops(model: IRModel) -> list[Operation]:
    """The main function's ops, constants and the return excepted, in block order."""
    return [
        op
        for op in model.main.body.blocks[0].ops
        if not isinstance(op, ConstantOp | ReturnOp) and op.results
    ]
