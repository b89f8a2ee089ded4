"""`float-pipeline{level=N}`: the float-level graph optimizations in a sound order, by
RKNN-Toolkit2's `optimization_level`. The order is written here and nowhere else.

* 0: nothing.
* 1: clean-up that computes exactly what the model computed: canonicalize (no-op removal,
  CSE, dead code), constant folding (the same kernels, run once at compile time).
* 2: also fusions that keep the arithmetic (ops merged into one, the same computation
  inside): layout-op merging, activation and residual-add fusion, lossless pruning of
  all-zero channels. Two exceptions change the last bits only: an activation written as
  several ops (Gelu with Erf, Paddle's HardSwish) is computed by the one op's kernel, and
  pruning sums the remaining channels in another order.
* 3 (default): also rewrites that change the float arithmetic while keeping the
  mathematics: BatchNormalization and scale folding into weights (the weights are
  rescaled) and subgraph fusion (LayerNormalization, GLU, Gemm computed as one op).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass, PassPipeline

from passes.pass_group import PassGroup

LEVELS: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("canonicalize", "fold-constants", "canonicalize"),
    2: ("canonicalize", "fold-constants", "merge-layout-ops", "canonicalize",
        "fuse-activation", "prune", "fuse-add", "canonicalize"),
    3: ("canonicalize", "fold-constants", "merge-layout-ops", "fuse-subgraphs",
        "fold-batchnorm", "fold-scale", "canonicalize", "fuse-activation", "prune",
        "fuse-add", "canonicalize"),
}  # fmt: skip


@dataclass(frozen=True)
class FloatPipeline(PassGroup):
    """The float graph optimizations of optimization_level `level` (0-3)."""

    name = "float-pipeline"
    level: int = 3
    residual_fusion: bool = True

    def members(self) -> list[ModulePass]:
        from passes.registry import all_passes  # the registry names this module too

        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {sorted(LEVELS)}, not {self.level}")
        names = tuple(n for n in LEVELS[self.level] if self.residual_fusion or n != "fuse-add")
        if not names:
            return []
        return list(PassPipeline.parse_spec(all_passes(), ",".join(names)).passes)
