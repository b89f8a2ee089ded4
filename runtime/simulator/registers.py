"""The NPU's register file as the simulator sees it: the last value written to each register
of each block (a register never written holds 0, its reset value), read back by field
name through the register map (`backends.registers`)."""

from __future__ import annotations

from backends.registers import RK3588, RegisterDatabase
from backends.registers.values import signed32


class RegisterFile:
    def __init__(self, db: RegisterDatabase = RK3588) -> None:
        self.db = db
        self.values: dict[str, dict[str, int]] = {block: {} for block in db.blocks}

    def write(self, block: str, register: str, raw: int) -> None:
        self.db.register(block, register)
        self.values[block][register] = raw

    def raw(self, block: str, register: str) -> int:
        self.db.register(block, register)  # a bad name is an error, not a silent 0
        return self.values[block].get(register, 0)

    def field(self, block: str, register: str, name: str) -> int:
        return self.db.register(block, register).field(name).extract(self.raw(block, register))

    def fields(self, block: str, register: str) -> dict[str, int]:
        return self.db.register(block, register).decode(self.raw(block, register))

    def signed(self, block: str, register: str) -> int:
        """A whole 32-bit register as a two's complement number (operands, bounds)."""
        return signed32(self.raw(block, register))
