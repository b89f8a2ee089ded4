"""Weight packing (`backends/codegen/packing.py`): positions worked out by hand from the
layouts of anchors §1.6 (direct `[K1][C1][Kh][Kw][cout2][cin2]`, depthwise
`[C1][Kh][Kw][group]`), with every weight a distinct value so that a position identifies it;
and the simulator's unpacking (written separately, runtime/simulator/mac.py) reading back
what packing wrote, for random shapes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.codegen.packing import (
    block_diagonal,
    pack_conv_weights,
    pack_depthwise_weights,
    window,
)
from backends.registers import encode_value
from backends.registers.values import weight_atoms
from backends.targets import get_target
from runtime.simulator import Memory, RegisterFile
from runtime.simulator.cube import Cube
from runtime.simulator.mac import ConvShape, read_weights


def distinct(*shape: int) -> np.ndarray:
    """1, 2, 3, ... so that no two weights are equal and no weight is a padding 0."""
    return np.arange(1, int(np.prod(shape)) + 1, dtype=np.int64).reshape(shape)


def test_one_atom_by_hand():
    # K 3, C 5, 2x3 kernel, atoms cout2 4 x cin2 8: one block, 2*3*4*8 = 192 weights.
    # (k, c, y, x) -> ((y * 3 + x) * 4 + k) * 8 + c
    w = distinct(3, 5, 2, 3)
    packed = pack_conv_weights(w, cout2=4, cin2=8)
    assert packed.shape == (192,)
    assert packed[((1 * 3 + 2) * 4 + 2) * 8 + 4] == w[2, 4, 1, 2]  # 180
    assert packed[0] == w[0, 0, 0, 0]
    assert packed[8] == w[1, 0, 0, 0]  # the next output lane
    assert packed[32] == w[0, 0, 0, 1]  # the next column after cout2 x cin2
    assert packed[96] == w[0, 0, 1, 0]  # the next row after Kw columns
    assert packed[5] == 0 and packed[3 * 8] == 0  # input lane 5, output lane 3: padding
    assert np.count_nonzero(packed) == w.size


def test_groups_of_atoms_by_hand():
    # K 5, C 10, 1x1, atoms 4 x 8: K1 = 2, C1 = 2 blocks of 32, in the order
    # (k1 0, c1 0), (0, 1), (1, 0), (1, 1): (k, c) -> ((k // 4) * 2 + c // 8) * 32 + (k % 4) * 8 + c % 8
    w = distinct(5, 10, 1, 1)
    packed = pack_conv_weights(w, cout2=4, cin2=8)
    assert packed.shape == (128,)
    assert packed[97] == w[4, 9, 0, 0]  # block 3, lane 0, input 1
    assert packed[40] == w[1, 8, 0, 0]  # block 1, lane 1, input 0
    assert packed[64] == w[4, 0, 0, 0]  # block 2
    assert packed[33] == w[0, 9, 0, 0]
    assert packed[34] == 0 and packed[42] == 0  # inputs 10 of lanes 0 and 1: past C
    assert np.count_nonzero(packed) == 50


def test_int8_atoms_are_32_by_32():
    # rk3588 int8 (anchors §1.6): 32 x 32; K 64, C 64, 1x1: (33, 40) -> (1 * 2 + 1) * 1024 + 32 + 8
    atoms = weight_atoms(get_target("rk3588"), "i8")
    assert (atoms.cout2, atoms.cin2, atoms.depthwise) == (32, 32, 64)
    w = distinct(64, 64, 1, 1)
    assert pack_conv_weights(w, atoms.cout2, atoms.cin2)[3112] == w[33, 40, 0, 0]


def test_depthwise_by_hand():
    # C 70, 2x2 kernel, groups of 64: C1 = 2, (c, y, x) -> ((c // 64 * 2 + y) * 2 + x) * 64 + c % 64
    w = distinct(70, 2, 2)
    packed = pack_depthwise_weights(w, group=64)
    assert packed.shape == (2 * 2 * 2 * 64,)
    assert packed[(6 + 0) * 64 + 1] == w[65, 1, 0]  # 385
    assert packed[63] == w[63, 0, 0] and packed[64] == w[0, 0, 1]
    assert packed[4 * 64 + 6] == 0  # channel 70 of group 1: padding
    assert np.count_nonzero(packed) == w.size


def test_window_zero_extends():
    w = distinct(3, 2, 1, 1)
    out = window(w, (1, 5), (0, 4))
    assert out.shape == (4, 4, 1, 1)
    np.testing.assert_array_equal(out[:2, :2], w[1:3])
    assert not out[2:].any() and not out[:, 2:].any()


def test_block_diagonal():
    w = distinct(4, 3, 1, 1)  # 2 groups: 2 outputs x 3 inputs each
    dense = block_diagonal(w, 2)[..., 0, 0]
    np.testing.assert_array_equal(dense[:2, :3], w[:2, :, 0, 0])
    np.testing.assert_array_equal(dense[2:, 3:], w[2:, :, 0, 0])
    assert not dense[:2, 3:].any() and not dense[2:, :3].any()


# ---------------------------------------------------------------------- packing <-> simulator


def registers_for(per_kernel: int, total: int, address: int) -> RegisterFile:
    regs = RegisterFile()
    for name, fields in (("CNA.WEIGHT_SIZE0", {"WEIGHT_BYTES": total}),
                         ("CNA.WEIGHT_SIZE1", {"WEIGHT_BYTES_PER_KERNEL": per_kernel}),
                         ("CNA.DCOMP_ADDR0", {"DECOMPRESS_ADDR0": address})):  # fmt: skip
        block, register = name.split(".")
        regs.write(block, register, encode_value(name, **fields))
    return regs


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(1, 3), st.integers(1, 3),
       st.booleans(), st.sampled_from(["i8", "i16"]))  # fmt: skip
def test_the_simulator_reads_what_packing_wrote(kernels, channels, kh, kw, depthwise, dtype):
    target = get_target("rk3588")
    atoms = weight_atoms(target, dtype)
    storage = np.int8 if dtype == "i8" else np.int16
    size = np.dtype(storage).itemsize
    channels = -(-channels // target.c2(dtype)) * target.c2(dtype)  # DATAIN_CHANNEL
    rng = np.random.default_rng(kernels * 1000 + channels)
    info = np.iinfo(storage)
    if depthwise:
        w = rng.integers(info.min, info.max, (channels, kh, kw), endpoint=True)
        packed = pack_depthwise_weights(w.astype(storage), atoms.depthwise)
        per_kernel = kh * kw * -(-channels // atoms.depthwise) * atoms.depthwise * size
        total, kernels = per_kernel, 1
    else:
        w = rng.integers(info.min, info.max, (kernels, channels, kh, kw), endpoint=True)
        packed = pack_conv_weights(w.astype(storage), atoms.cout2, atoms.cin2)
        per_kernel = kh * kw * -(-channels // atoms.cin2) * atoms.cin2 * size
        total = -(-kernels // atoms.cout2) * atoms.cout2 * per_kernel
    memory = Memory()
    address = memory.allocate(0, packed.astype(np.dtype(storage).newbyteorder("<")).tobytes())
    assert total == packed.size * size
    regs = registers_for(per_kernel, total, address)
    cube = Cube(0, dtype, channels, channels, 1, 1, 1, 1, False)
    shape = ConvShape(dtype, depthwise, cube, (0, 0), 0, (1, 1), (1, 1), (kh, kw), kernels, 1, 1)
    np.testing.assert_array_equal(read_weights(regs, memory, shape, target), w)
