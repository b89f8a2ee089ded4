"""`dce`: erase ops whose results nobody uses (graph outputs are used by `func.return`, so
they stay). Only side-effect-free ops (the `Pure` trait) are erased."""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Block, Operation
from xdsl.passes import ModulePass

from passes.rewrite import erase_dead_ops


@dataclass(frozen=True)
class DeadCodeElimination(ModulePass):
    """Erase ops whose results nobody uses (graph outputs stay)."""

    name = "dce"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for block in _blocks(op):
            erase_dead_ops(block)


def _blocks(root: Operation) -> list[Block]:
    return [block for op in root.walk() for region in op.regions for block in region.blocks]
