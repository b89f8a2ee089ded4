"""The NPU register database, as data (Mesa rocket style: registers described in a table,
encoders and decoders generic over it).

- `database.py`: `Field`, `Register`, `Block`, `RegisterDatabase`, `RegisterError`.
- `rk3588.py`: the register map (`RK3588`), every register and field with its source.
- `command.py`: the u64 command word `(target << 48) | (value << 16) | offset` and the task
  trailer's special words.

    from backends.registers import encode, decode, encode_value, decode_value
    encode("CNA", "CONV_CON3", CONV_X_STRIDE=2, CONV_Y_STRIDE=2)   # 0x0201_0000_0012_1014
    decode(0x0201_0000_0012_1014)       # Decoded("CNA", "CONV_CON3", {"CONV_X_STRIDE": 2, ...})
    encode_value("DPU.BS_CFG", BS_ALU_ALGO=2)                       # 0x20000
    task_trailer(next_address=0x1000_0040, next_words=130)          # the 4 chaining words
"""

from backends.registers.command import (
    CMD,
    CONV_BLOCKS,
    NOP_WORD,
    OP_40_WORD,
    Decoded,
    data_amount,
    decode,
    decode_value,
    encode,
    encode_value,
    op_enable_word,
    pack,
    task_trailer,
    unpack,
    write_target,
)
from backends.registers.database import Block, Field, Register, RegisterDatabase, RegisterError
from backends.registers.rk3588 import RK3588

__all__ = [
    "CMD",
    "CONV_BLOCKS",
    "NOP_WORD",
    "OP_40_WORD",
    "RK3588",
    "Block",
    "Decoded",
    "Field",
    "Register",
    "RegisterDatabase",
    "RegisterError",
    "data_amount",
    "decode",
    "decode_value",
    "encode",
    "encode_value",
    "op_enable_word",
    "pack",
    "task_trailer",
    "unpack",
    "write_target",
]
