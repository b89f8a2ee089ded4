"""Every pass by name: what `python -m compiler opt --passes a,b` can run.

Passes load lazily (xDSL's own registry does the same), so naming a pass costs nothing until
it runs and a broken pass module cannot stop the others.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from xdsl.passes import ModulePass

# name -> "module:class"; one pass per module, the module named after the pass
PASSES: dict[str, str] = {
    "dce": "passes.dce:DeadCodeElimination",
    "canonicalize": "passes.canonicalize:Canonicalize",
    "fold-constants": "passes.fold_constants:FoldConstants",
    "fold-batchnorm": "passes.fold_batchnorm:FoldBatchNorm",
    "fold-scale": "passes.fold_scale:FoldScale",
    "fuse-activation": "passes.fuse_activation:FuseActivation",
    "fuse-add": "passes.fuse_add:FuseAdd",
    "merge-layout-ops": "passes.merge_layout_ops:MergeLayoutOps",
    "fuse-subgraphs": "passes.fuse_subgraphs:FuseSubgraphs",
    "prune": "passes.prune:Prune",
    "float-pipeline": "passes.float_pipeline:FloatPipeline",
    "split-lut-activations": "passes.split_lut_activations:SplitLutActivations",
    "strip-qdq": "passes.strip_qdq:StripQdq",
    "lower-to-npu": "passes.lower_to_npu:LowerToNpu",
    "tile": "passes.tile:Tile",
    "plan-memory": "passes.plan_memory:PlanMemory",
    "partition-cpu": "passes.partition_cpu:PartitionCpu",
    "assign-layout": "passes.assign_layout:AssignLayout",
    "align-channels": "passes.align_channels:AlignChannels",
}


def load_pass(name: str) -> type[ModulePass]:
    module, _, cls = PASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """name -> factory, the shape xDSL's `PassPipeline.parse_spec` takes."""
    return {name: (lambda name=name: load_pass(name)) for name in PASSES}
