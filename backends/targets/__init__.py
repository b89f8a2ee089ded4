"""Targets: one record per Rockchip NPU chip (cores, MAC arrays, clock, CBUF, DDR rate, C2,
channel alignment, dtypes, SRAM). The numbers and their sources are in `chips.py`, the
record's meaning in `target.py`.

    from backends.targets import get_target
    target = get_target("rk3568")          # case-insensitive, aliases; None: DEFAULT_TARGET
    target.c2("i8")                        # 8
    target.alignment("i8", "depthwise")    # 32
    target.supports("f16", "i4")           # None, or one line saying why not
"""

from __future__ import annotations

from types import MappingProxyType

from backends.targets.chips import CHIPS
from backends.targets.target import (
    ACTIVATION_DTYPES,
    ALIGNMENT_KINDS,
    FEATURES,
    WEIGHT_DTYPES,
    Alignment,
    DdrBandwidth,
    MacArray,
    Target,
)
from dialects.errors import CompilerError

__all__ = [
    "ACTIVATION_DTYPES",
    "ALIGNMENT_KINDS",
    "DEFAULT_TARGET",
    "FEATURES",
    "TARGETS",
    "WEIGHT_DTYPES",
    "Alignment",
    "DdrBandwidth",
    "MacArray",
    "Target",
    "get_target",
    "targets_supporting",
]

DEFAULT_TARGET = "rk3588"

# canonical name -> record, in the order of chips.py
TARGETS: MappingProxyType[str, Target] = MappingProxyType({t.name: t for t in CHIPS})

_BY_NAME: dict[str, Target] = {}
for _target in CHIPS:
    for _name in (_target.name, *_target.aliases):
        if _name in _BY_NAME:
            raise ValueError(f"target name {_name!r} is used twice")
        _BY_NAME[_name] = _target


def get_target(name: str | None = None) -> Target:
    """The record for `name` (a canonical name or an alias, any case); None gives
    `DEFAULT_TARGET`. An unknown name is a `CompilerError` listing the known ones."""
    if name is None:
        name = DEFAULT_TARGET
    found = _BY_NAME.get(name.strip().lower())
    if found is None:
        raise CompilerError(f"unknown target {name!r}; known targets: {_known()}")
    return found


def targets_supporting(activation_dtype: str, weight_dtype: str | None = None) -> list[str]:
    """Canonical names of the chips whose NPU computes this pairing (for error messages:
    "... i4 weights run on rk3576")."""
    return [t.name for t in CHIPS if t.supports(activation_dtype, weight_dtype) is None]


def _known() -> str:
    return ", ".join(f"{t.name} ({', '.join(t.aliases)})" if t.aliases else t.name for t in CHIPS)
