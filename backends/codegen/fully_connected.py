"""`npu.fully_connected` -> MAC-array tasks, each row of the input a 1 x 1 convolution of a
1 x 1 feature map with K channels.

The input [..., K] and output [..., N] are row-major (layout UNDEFINED), so each task reads
its row planar (CONV_CON1.NONALIGN_DMA: channel c at `c * SURF_STRIDE` = c elements) and
writes its row planar (FEATURE_MODE_CFG.NONALIGN), output channels [c0, c1) of the tile
task from `row * N + c0`. A tile task of rows [y0, y1) is y1 - y0 hardware tasks (one per
row; the weights stay in the CBUF after the first: WEIGHT_REUSE). Weights are packed as a
[N, K, 1, 1] convolution's. int8, int16 and float16 (`dpu.py`'s float path).
"""

from __future__ import annotations

from collections.abc import Iterator

from backends.cbuf import Cbuf, align_up, ceil_div
from backends.cbuf import weight_bytes as cbuf_weight_bytes
from backends.codegen.dpu import plan_layer_stage
from backends.codegen.emit import NotGenerated, TaskWords
from backends.codegen.mac_task import MacTask, OpContext, emit_mac_task
from backends.codegen.packing import STORAGE, little_endian, pack_conv_weights, window
from backends.codegen.tensors import placed
from backends.codegen.weights import op_arrays
from backends.registers.values import (
    CBUF_ENTRIES_PER_BANK,
    ELEMENT_BYTES,
    feature_atom,
    weight_atoms,
)
from dialects.errors import CompilerError
from dialects.npu import ops as npu
from dialects.npu.placement import get_tasks


def fully_connected_tasks(op: npu.FullyConnectedOp, ctx: OpContext) -> Iterator[TaskWords]:
    x, y = placed(op.input, ctx.func), placed(op.output, ctx.func)
    dtype = op.quant.element
    if dtype not in ("i8", "i16", "f16") or x.dtype != dtype or y.dtype != dtype:
        raise NotGenerated(f"{op.describe()}: {dtype} fully connected has no code generation yet")
    if op.weight_quant.element != dtype:
        raise NotGenerated(f"{op.describe()}: {op.weight_quant.element} weights beside {dtype} "
                           "activations have no code generation yet")  # fmt: skip
    if not (x.planar and y.planar):
        raise CompilerError(f"{op.describe()}: expects row-major input and output")
    k, n = x.shape[-1], y.shape[-1]
    arrays = op_arrays(op, ctx.weights)
    in_q = npu.quant_of(op.input)
    assert in_q is not None
    stage = plan_layer_stage(op, arrays.folded_bias(in_q.zero_point))
    target, size = ctx.target, ELEMENT_BYTES[dtype]
    atoms, cbuf_c2 = weight_atoms(target, dtype), target.c2(dtype)
    channels = align_up(k, cbuf_c2)
    _, atom = feature_atom(target, dtype, planar=True)
    cbuf = Cbuf(target.cbuf_banks, target.cbuf_bank_bytes)
    entry = target.cbuf_bank_bytes // CBUF_ENTRIES_PER_BANK
    tasks = get_tasks(op)
    if not tasks:
        raise CompilerError(f"{op.describe()}: no backend.tasks: run tile first")
    packed: dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int]]] = {}
    for y0, y1, c0, c1 in tasks:
        kernels = c1 - c0
        if (c0, c1) not in packed:
            dense = window(arrays.padded[:, :, None, None], (c0, c1), (0, channels))
            weights = pack_conv_weights(dense, atoms.cout2, atoms.cin2)
            packed[(c0, c1)] = (ctx.blob.add(little_endian(weights.astype(STORAGE[dtype]))),
                                ctx.blob.add(stage.table(c0, kernels)))  # fmt: skip
            reuse = False
        else:
            reuse = True
        weight_address, table_address = packed[(c0, c1)]
        split = cbuf.split(cbuf_weight_bytes(kernels, k, 1, 8 * size))
        if split is None:
            raise CompilerError(f"{op.describe()}: the weights of [{c0}, {c1}) exceed the CBUF")
        per_kernel = align_up(channels, atoms.cin2) * size
        for row in range(y0, y1):
            task = MacTask(
                dtype=dtype, depthwise=False, in_address=(x.buffer, x.offset + row * k * atom),
                in_planar=True, in_width=1, in_height=1, in_channels=channels, in_real=k,
                line_stride=1, surf_stride=1, pad_top=0, pad_left=0,
                pad_value=in_q.zero_point, stride=(1, 1), dilation=(1, 1),
                weight_address=weight_address, kernel=(1, 1), kernels=kernels,
                weight_bytes=align_up(kernels, atoms.cout2) * per_kernel,
                weight_bytes_per_kernel=per_kernel, data_banks=split.data_banks,
                weight_banks=split.weight_banks, weight_reuse=reuse or row > y0,
                data_entries=ceil_div(ceil_div(k, cbuf_c2) * cbuf_c2 * size, entry),
                out_address=(y.buffer, y.offset + (row * n + c0) * atom), out_planar=True,
                out_width=1, out_height=1, out_channels=kernels, out_real=kernels,
                out_surf_stride=1, table_address=table_address,
            )  # fmt: skip
            yield emit_mac_task(task, stage)
