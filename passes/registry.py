"""Every pass by name: what `python -m compiler opt --passes a,b` can run."""

from __future__ import annotations

from collections.abc import Callable

from xdsl.passes import ModulePass

from passes.dce import DeadCodeElimination

PASSES: tuple[type[ModulePass], ...] = (DeadCodeElimination,)


def all_passes() -> dict[str, Callable[[], type[ModulePass]]]:
    """name -> factory, the shape xDSL's `PassPipeline.parse_spec` takes."""
    return {p.name: (lambda p=p: p) for p in PASSES}
