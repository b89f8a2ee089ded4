"""The NPU's register file as the simulator sees it: the last value written to each register
of each block (a register never written holds 0, its reset value), read back by field
name through the register map (`backends.registers`). DPU.LUT_ACCESS_DATA is a port, not
storage: each write stores a LUT entry (`lut_table`, `backends/registers/dpu_values.py`).

It also holds the core's other state that outlives a task the same way: the LUT tables and
`cbuf_weights`, the weights the last convolution task loaded into the CBUF (a task that sets
CNA.CBUF_CON0.WEIGHT_REUSE computes with them instead of reading its own;
`runtime/simulator/mac.py`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backends.registers import RK3588, RegisterDatabase
from backends.registers.values import signed32
from runtime.simulator.memory import SimulatorError


@dataclass(frozen=True)
class CbufWeights:
    """Weights in the CBUF: what the loading task read them as (`source`: address, bytes,
    banks and the shape they were unpacked to) and the unpacked values."""

    source: tuple
    values: np.ndarray


class RegisterFile:
    def __init__(self, db: RegisterDatabase = RK3588) -> None:
        self.db = db
        self.values: dict[str, dict[str, int]] = {block: {} for block in db.blocks}
        self.luts: dict[int, dict[int, int]] = {}  # LUT_TABLE_ID -> {address: 16-bit entry}
        self.cbuf_weights: CbufWeights | None = None

    def write(self, block: str, register: str, raw: int) -> None:
        self.db.register(block, register)
        self.values[block][register] = raw
        if (block, register) == ("DPU", "LUT_ACCESS_DATA"):
            self._lut_write()

    def _lut_write(self) -> None:
        """Store the entry at LUT_ACCESS_CFG's LUT_ADDR of LUT_TABLE_ID and increment the
        address (LUT_ACCESS_TYPE 1 = write) [nvdla]."""
        cfg = self.fields("DPU", "LUT_ACCESS_CFG")
        if cfg["LUT_ACCESS_TYPE"] != 1:
            return
        entry = self.field("DPU", "LUT_ACCESS_DATA", "LUT_ACCESS_DATA")
        self.luts.setdefault(cfg["LUT_TABLE_ID"], {})[cfg["LUT_ADDR"]] = entry
        register = self.db.register("DPU", "LUT_ACCESS_CFG")
        cfg["LUT_ADDR"] += 1
        self.values["DPU"]["LUT_ACCESS_CFG"] = register.encode(**cfg)

    def lut_table(self, table_id: int, entries: int) -> np.ndarray:
        """The table's entries as signed 16-bit numbers, int64; every one must be written."""
        stored = self.luts.get(table_id, {})
        missing = [a for a in range(entries) if a not in stored]
        if missing:
            raise SimulatorError(f"LUT table {table_id}: {len(missing)} entries never written")
        raw = np.array([stored[a] for a in range(entries)], np.int64)
        return np.where(raw >= 1 << 15, raw - (1 << 16), raw)

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
