"""What a register database is: `Field`, `Register`, `Block`, `RegisterDatabase`, and the
value-level encoder/decoder every table shares (`Register.encode` / `Register.decode`).

The tables themselves are data in `rk3588.py`; the command-word layout is in `command.py`.
A table that contradicts itself (overlapping fields, a field past bit 31, two registers at
one offset, a register outside its block's window) fails when it is built, with a
`RegisterError` naming block.register.field.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from dialects.errors import CompilerError

REGISTER_BITS = 32
WINDOW_SIZE = 0x1000  # every block's registers sit in one 4 KiB window (anchors §1.2)


class RegisterError(CompilerError, ValueError):
    """A bad register name, field name or field value, or an inconsistent table. One line,
    naming block.register.field and, for values, the allowed range."""


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


@dataclass(frozen=True)
class Field:
    """Bits `lsb .. lsb + width - 1` of a 32-bit register. A signed field holds a two's
    complement number of `width` bits; `reset` is the value a write that does not name the
    field puts there (0 unless a source documents a reset value)."""

    name: str
    lsb: int
    width: int
    signed: bool = False
    doc: str = ""
    reset: int = 0

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """The field's bits in place within the register."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def min_value(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def reserved(self) -> bool:
        """registers.xml names the bits it documents as unused RESERVED_n."""
        return self.name.startswith("RESERVED")

    def bits(self) -> str:
        return f"bit {self.lsb}" if self.width == 1 else f"bits {self.lsb}-{self.msb}"

    def check(self, value: object, where: str) -> int:
        """`value` as an int, or a `RegisterError` naming `where`.field and the range."""
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int):
            raise RegisterError(
                f"{where}.{self.name}: value {value!r} is not an integer "
                f"(allowed {self.min_value}..{self.max_value})"
            )
        if not self.min_value <= value <= self.max_value:
            kind = "signed" if self.signed else "unsigned"
            raise RegisterError(
                f"{where}.{self.name}: value {value} ({value:#x}) does not fit the "
                f"{self.width}-bit {kind} field ({self.bits()}); "
                f"allowed {self.min_value}..{self.max_value} (limit {self.max_value:#x})"
            )
        return value

    def insert(self, value: int) -> int:
        """The field's bits, in place, for an in-range `value`."""
        return (value << self.lsb) & self.mask

    def extract(self, raw: int) -> int:
        value = (raw & self.mask) >> self.lsb
        if self.signed and value >> (self.width - 1):
            value -= 1 << self.width
        return value


@dataclass(frozen=True)
class Register:
    """One 32-bit register: `offset` is the full 16-bit register number the command word
    carries (e.g. 0x100C for CNA.CONV_CON1), not an offset within the block."""

    block: str
    name: str
    offset: int
    fields: tuple[Field, ...]
    doc: str = ""
    _by_name: Mapping[str, Field] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.qualified_name
        if not 0 <= self.offset <= 0xFFFF or self.offset % 4:
            raise RegisterError(f"{where}: offset {self.offset:#x} is not a 16-bit word offset")
        by_name: dict[str, Field] = {}
        used = 0
        for f in self.fields:
            if f.width < 1 or f.lsb < 0 or f.msb >= REGISTER_BITS:
                raise RegisterError(
                    f"{where}.{f.name}: lsb {f.lsb}, width {f.width} does not fit in 32 bits"
                )
            if f.name in by_name:
                raise RegisterError(f"{where}.{f.name}: field defined twice")
            if used & f.mask:
                other = next(g.name for g in self.fields if g.mask & f.mask and g is not f)
                raise RegisterError(f"{where}.{f.name}: {f.bits()} overlap field {other}")
            f.check(f.reset, where)
            by_name[f.name] = f
            used |= f.mask
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @property
    def qualified_name(self) -> str:
        return f"{self.block}.{self.name}"

    @property
    def defined_mask(self) -> int:
        """The bits some field covers."""
        mask = 0
        for f in self.fields:
            mask |= f.mask
        return mask

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise RegisterError(
                f"{self.qualified_name}: no field {name!r}{_suggest(name, self._by_name)}; "
                f"fields: {', '.join(self._by_name) or '(none)'}"
            ) from None

    def encode(self, **values: object) -> int:
        """The 32-bit value with the named fields set; fields not named get their reset value."""
        for name in values:
            self.field(name)  # unknown names first, so the message is about the name
        raw = 0
        for f in self.fields:
            raw |= f.insert(f.check(values.get(f.name, f.reset), self.qualified_name))
        return raw

    def decode(self, raw: int, *, strict: bool = True) -> dict[str, int]:
        """Every field's value, lowest bits first. Bits no field covers are an error, or with
        `strict=False` come back as "UNDEFINED_BITS" (the value with those bits in place)."""
        if not 0 <= raw <= 0xFFFF_FFFF:
            raise RegisterError(f"{self.qualified_name}: {raw:#x} is not a 32-bit value")
        out = {f.name: f.extract(raw) for f in sorted(self.fields, key=lambda f: f.lsb)}
        undefined = raw & ~self.defined_mask
        if undefined:
            if strict:
                raise RegisterError(
                    f"{self.qualified_name}: value {raw:#010x} sets bits {undefined:#010x} "
                    "that no field defines"
                )
            out["UNDEFINED_BITS"] = undefined
        return out


@dataclass(frozen=True)
class Block:
    """One register domain. `target` is its id in registers.xml's `target` enum (PC 0x100,
    CNA 0x200, ...), which `command.py` turns into the command word's target field; `base`
    is the start of its 4 KiB register window."""

    name: str
    target: int
    base: int
    registers: tuple[Register, ...]
    doc: str = ""
    _by_name: Mapping[str, Register] = dataclasses.field(init=False, repr=False, compare=False)
    _by_offset: Mapping[int, Register] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Register] = {}
        by_offset: dict[int, Register] = {}
        for reg in self.registers:
            if reg.block != self.name:
                raise RegisterError(f"{reg.qualified_name}: listed in block {self.name}")
            if reg.name in by_name:
                raise RegisterError(f"{reg.qualified_name}: register defined twice")
            if reg.offset in by_offset:
                raise RegisterError(
                    f"{reg.qualified_name}: offset {reg.offset:#06x} is already "
                    f"{by_offset[reg.offset].qualified_name}"
                )
            if not self.base <= reg.offset < self.base + WINDOW_SIZE:
                raise RegisterError(
                    f"{reg.qualified_name}: offset {reg.offset:#06x} is outside the block's "
                    f"window {self.base:#06x}..{self.base + WINDOW_SIZE - 1:#06x}"
                )
            by_name[reg.name] = reg
            by_offset[reg.offset] = reg
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))
        object.__setattr__(self, "_by_offset", MappingProxyType(by_offset))

    def register(self, name: str) -> Register:
        try:
            return self._by_name[name]
        except KeyError:
            raise RegisterError(
                f"{self.name}: no register {name!r}{_suggest(name, self._by_name)}"
            ) from None

    def at(self, offset: int) -> Register:
        try:
            return self._by_offset[offset]
        except KeyError:
            raise RegisterError(f"{self.name}: no register at offset {offset:#06x}") from None

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers)


class RegisterDatabase:
    """The blocks of one NPU generation, looked up by name, target id or register offset."""

    def __init__(self, name: str, blocks: Iterable[Block]) -> None:
        self.name = name
        self.blocks: Mapping[str, Block] = MappingProxyType({b.name: b for b in blocks})
        by_target: dict[int, Block] = {}
        by_offset: dict[int, Register] = {}
        for block in self.blocks.values():
            if block.target in by_target:
                raise RegisterError(f"{block.name}: target {block.target:#x} used twice")
            by_target[block.target] = block
            for reg in block:
                if reg.offset in by_offset:
                    raise RegisterError(
                        f"{reg.qualified_name}: offset {reg.offset:#06x} is already "
                        f"{by_offset[reg.offset].qualified_name}"
                    )
                by_offset[reg.offset] = reg
        self._by_target = MappingProxyType(by_target)
        self._by_offset = MappingProxyType(by_offset)

    def block(self, name: str) -> Block:
        try:
            return self.blocks[name]
        except KeyError:
            raise RegisterError(
                f"{self.name}: no block {name!r}{_suggest(name, self.blocks)}; "
                f"blocks: {', '.join(self.blocks)}"
            ) from None

    def register(self, block: str, name: str) -> Register:
        return self.block(block).register(name)

    def lookup(self, qualified_name: str) -> Register:
        """Look up "CNA.CONV_CON1"."""
        block, sep, name = qualified_name.partition(".")
        if not sep:
            raise RegisterError(f"{qualified_name!r}: expected BLOCK.REGISTER")
        return self.register(block, name)

    def block_with_target(self, target: int) -> Block | None:
        return self._by_target.get(target)

    def at(self, offset: int) -> Register:
        """The register at a full offset (offsets are unique across blocks)."""
        try:
            return self._by_offset[offset]
        except KeyError:
            raise RegisterError(f"{self.name}: no register at offset {offset:#06x}") from None

    def registers(self) -> Iterator[Register]:
        for block in self.blocks.values():
            yield from block

    def __iter__(self) -> Iterator[Block]:
        return iter(self.blocks.values())
