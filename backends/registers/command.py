"""The 64-bit register-command word the RKNPU's program controller fetches, and the few
words that are not register writes (anchors.md §1.3; Mesa rkt_regcmd.c `emit_raw`/`emit`
and the end of `fill_first_regcmd`; chaining from rkt_ml.c `compile_operation`):

    bits 63..48  target   block id | 0x0001 for a register write (CNA 0x0201, DPU 0x1001, ...)
    bits 47..16  value    the 32-bit register value
    bits 15..0   offset   the full register offset (0x100C for CNA.CONV_CON1)

Words that are not writes are decoded as the pseudo-block "CMD" (our naming):

    CMD.NOP        0x0000_0000_0000_0000  Mesa's bare zero word in place of PC.BASE_ADDRESS
                                          in the trailer of an operation's only task
    CMD.OP_40      0x0041_0000_0000_0000  "TRM: before op_en, 64'h0041_xxxx_xxxx_xxxx must
                                          be set" (Mesa writes it with value and offset 0)
    CMD.OP_ENABLE  target 0x0081, offset 0x0008 (PC.OPERATION_ENABLE), value = which blocks
                   to start. Mesa writes 0x1D; the TRM comment it quotes gives 0x7f for "each
                   block's op_en (CNA, CORE, ..., PPU_RDMA)". We read the value with
                   GLOBAL.OPERATION_ENABLE's bits (CNA b0, CORE b2, DPU b3, DPU_RDMA b4, PPU b5,
                   PPU_RDMA b6): 0x1D = CNA|CORE|DPU|DPU_RDMA. That reading is our
                   interpretation (anchors §1.3), not a documented fact.

Blocks whose registers.xml target id does not fit 16 bits (DDMA 0x10000, SDMA 0x20000,
GLOBAL 0x40000) have no known command-stream encoding: `encode` refuses them (their
values still encode with `encode_value`, e.g. for MMIO).
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import NamedTuple

from backends.registers.database import Block, Register, RegisterDatabase, RegisterError
from backends.registers.rk3588 import RK3588

TARGET_SHIFT = 48
VALUE_SHIFT = 16
TARGET_MASK = 0xFFFF
VALUE_MASK = 0xFFFF_FFFF
OFFSET_MASK = 0xFFFF

WRITE = 0x0001  # rkt_regcmd.c emit(): target = rkt_get_target(offset) + 0x1
OP_40_TARGET = 0x0041  # raw trailer word 0x0041_0000_0000_0000
OP_ENABLE_TARGET = 0x0081  # emit_raw(regs, 0x81, REG_PC_OPERATION_ENABLE, ...)

CMD = "CMD"
_OP_ENABLE_BITS = RK3588.register("GLOBAL", "OPERATION_ENABLE")
SPECIAL: MappingProxyType[str, Register] = MappingProxyType({
    "NOP": Register(CMD, "NOP", 0x0000, (), doc="the all-zero word"),
    "OP_40": Register(CMD, "OP_40", 0x0000, (), doc="0x0041_0000_0000_0000, before op-enable"),
    "OP_ENABLE": Register(CMD, "OP_ENABLE", RK3588.register("PC", "OPERATION_ENABLE").offset,
                          _OP_ENABLE_BITS.fields, doc="starts the task's blocks"),
})  # fmt: skip
_SPECIAL_TARGET = {"NOP": 0x0000, "OP_40": OP_40_TARGET, "OP_ENABLE": OP_ENABLE_TARGET}
_SPECIAL_BY_TARGET = {target: name for name, target in _SPECIAL_TARGET.items()}

# The blocks Mesa starts for a convolution task: value 0x1D.
CONV_BLOCKS = ("CNA", "CORE", "DPU", "DPU_RDMA")
OP_40_WORD = OP_40_TARGET << TARGET_SHIFT
NOP_WORD = 0


class Decoded(NamedTuple):
    """One command word: block and register names and every field's value."""

    block: str
    register: str
    fields: dict[str, int]


def pack(target: int, value: int, offset: int) -> int:
    """`(target << 48) | (value << 16) | offset`, each part range-checked."""
    for name, part, mask in (("target", target, TARGET_MASK), ("value", value, VALUE_MASK),
                             ("offset", offset, OFFSET_MASK)):  # fmt: skip
        if not 0 <= part <= mask:
            raise RegisterError(f"command word {name} {part:#x} does not fit in {mask:#x}")
    return (target << TARGET_SHIFT) | (value << VALUE_SHIFT) | offset


def unpack(word: int) -> tuple[int, int, int]:
    """(target, value, offset) of a u64 word."""
    if not 0 <= word < 1 << 64:
        raise RegisterError(f"command word {word:#x} is not a 64-bit unsigned value")
    return word >> TARGET_SHIFT, (word >> VALUE_SHIFT) & VALUE_MASK, word & OFFSET_MASK


def write_target(block: Block) -> int:
    """The target field of a write to `block`'s registers."""
    if block.target & 0xFF or block.target > 0xFF00:
        raise RegisterError(
            f"{block.name}: no known command-stream target (registers.xml's id "
            f"{block.target:#x} does not fit the 16-bit target field as block id | 0x1); "
            "its registers can only be encoded as values (encode_value)"
        )
    return block.target | WRITE


def _register(register: Register | str, db: RegisterDatabase) -> Register:
    return register if isinstance(register, Register) else db.lookup(register)


def encode_value(register: Register | str, /, *, db: RegisterDatabase = RK3588,
                 **fields: int) -> int:  # fmt: skip
    """The 32-bit value of `register` ("CNA.CONV_CON3" or a `Register`) with the named
    fields; unnamed fields are 0 (their reset value)."""
    return _register(register, db).encode(**fields)


def decode_value(register: Register | str, value: int, /, *, db: RegisterDatabase = RK3588,
                 strict: bool = True) -> dict[str, int]:  # fmt: skip
    """Every field of `register` in `value`, lowest bits first."""
    return _register(register, db).decode(value, strict=strict)


def encode(block: str, register: str, /, *, db: RegisterDatabase = RK3588, **fields: int) -> int:
    """The u64 command word writing `block.register` with the named fields (others 0).
    `block` "CMD" builds the special words: encode("CMD", "OP_ENABLE", CNA_OP_EN=1, ...)."""
    if block == CMD:
        reg = _special(register)
        return pack(_SPECIAL_TARGET[register], reg.encode(**fields), reg.offset)
    blk = db.block(block)
    reg = blk.register(register)
    return pack(write_target(blk), reg.encode(**fields), reg.offset)


def decode(word: int, *, db: RegisterDatabase = RK3588, strict: bool = True) -> Decoded:
    """(block, register, {field: value}) of a u64 command word; an unknown target or
    offset is a `RegisterError`."""
    target, value, offset = unpack(word)
    special = _SPECIAL_BY_TARGET.get(target)
    if special is not None:
        reg = SPECIAL[special]
        if offset != reg.offset:
            raise RegisterError(
                f"command word {word:#018x}: {CMD}.{special} (target {target:#06x}) with "
                f"offset {offset:#06x}, expected {reg.offset:#06x}"
            )
        return Decoded(CMD, special, reg.decode(value, strict=strict))
    blk = db.block_with_target(target & ~WRITE) if target & 0xFF == WRITE else None
    if blk is None:
        raise RegisterError(f"command word {word:#018x}: unknown target {target:#06x}")
    reg = blk.at(offset)
    return Decoded(blk.name, reg.name, reg.decode(value, strict=strict))


def _special(name: str) -> Register:
    try:
        return SPECIAL[name]
    except KeyError:
        raise RegisterError(
            f"{CMD}: no special word {name!r}; known: {', '.join(SPECIAL)}"
        ) from None


def op_enable_word(blocks: Iterable[str] = CONV_BLOCKS) -> int:
    """The op-enable word starting `blocks` (names from CNA, CORE, DPU, DPU_RDMA, PPU,
    PPU_RDMA). The default is Mesa's convolution task: 0x0081_0000_001D_0008."""
    return encode(CMD, "OP_ENABLE", **{f"{name}_OP_EN": 1 for name in blocks})


def data_amount(words: int) -> int:
    """PC.REGISTER_AMOUNTS.PC_DATA_AMOUNT announcing a next task of `words` u64 words
    (its trailer included): Mesa's align((words - 4) / 2, 2)."""
    if words < 4:
        raise RegisterError(f"a task has at least its 4 trailer words, not {words}")
    half = (words - 4) // 2
    return half + (half & 1)


def task_trailer(*, next_address: int | None = None, next_words: int | None = None,
                 single_task: bool = False, blocks: Iterable[str] = CONV_BLOCKS,
                 ) -> tuple[int, int, int, int]:  # fmt: skip
    """The last four words of a task: PC.BASE_ADDRESS (the next task's regcmd address, 0 for
    the last task, or a bare NOP word when the operation has one task), PC.REGISTER_AMOUNTS
    (the next task's size), OP_40, op-enable of `blocks`. `next_address` must be 16-byte
    aligned (PC_SOURCE_ADDR is bits 4-31; Mesa pads each task to 64 bytes)."""
    if (next_address is None) != (next_words is None):
        raise RegisterError("task_trailer: give both next_address and next_words, or neither")
    if single_task and next_address is not None:
        raise RegisterError("task_trailer: an operation's only task has no next task")
    if next_address is not None and next_address % 16:
        raise RegisterError(f"task_trailer: next task address {next_address:#x} is not 16-aligned")
    if single_task:
        first = NOP_WORD
    else:
        first = encode("PC", "BASE_ADDRESS", PC_SOURCE_ADDR=(next_address or 0) >> 4)
    amount = 0 if next_words is None else data_amount(next_words)
    return (first, encode("PC", "REGISTER_AMOUNTS", PC_DATA_AMOUNT=amount), OP_40_WORD,
            op_enable_word(blocks))  # fmt: skip
