"""A pass that is a named sequence of passes. Pipelines expand it (`compiler.pipeline`), so
each member is timed, verified and printed on its own."""

from __future__ import annotations

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.passes import ModulePass


class PassGroup(ModulePass):
    def members(self) -> list[ModulePass]:
        raise NotImplementedError

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        for member in self.members():
            member.apply(ctx, op)
