"""The kernel registry: ONNX op type -> numpy implementation.

Calling convention (shared by the reference interpreter, constant folding and CPU fallback):

    outputs = kernel(*inputs, **attributes)

* `inputs` are positional, in the order of the op's ONNX schema; an absent optional input in
  the middle is passed as `None`, absent trailing ones are omitted.
* `attributes` are only those set on the node, as plain Python values: int, float, str,
  list[int], list[float], list[str], or np.ndarray for tensor attributes. Every kernel spells
  its ONNX defaults as Python keyword defaults, so `conv(x, w, group=2)` works in a test.
* A kernel returns one np.ndarray, or a tuple with one entry per ONNX output (optional outputs
  included; the caller keeps what the graph uses).
* A kernel that cannot honour its input raises `KernelError` with a message saying what is
  unsupported; the caller adds the node name.
* An op whose extra outputs are costly (MaxPool's Indices) may also register a kernel for
  its first output alone with `first_output_kernel`; callers use it when the graph reads
  nothing else.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Kernel = Callable[..., Any]

KERNELS: dict[str, Kernel] = {}
FIRST_OUTPUT_KERNELS: dict[str, Kernel] = {}


class KernelError(Exception):
    """An input, attribute or attribute value that the kernel does not support."""


def kernel(*op_types: str) -> Callable[[Kernel], Kernel]:
    """Register `fn` as the implementation of each of `op_types`."""

    def register(fn: Kernel) -> Kernel:
        for op_type in op_types:
            if op_type in KERNELS:
                raise ValueError(f"kernel for {op_type} registered twice")
            KERNELS[op_type] = fn
        return fn

    return register


def first_output_kernel(op_type: str) -> Callable[[Kernel], Kernel]:
    """Register `fn` as the kernel of `op_type` that computes only its first output (same
    inputs and attributes as the full kernel, returns one array)."""

    def register(fn: Kernel) -> Kernel:
        FIRST_OUTPUT_KERNELS[op_type] = fn
        return fn

    return register


def kernel_for(op_type: str, later_outputs_read: bool) -> tuple[Kernel | None, bool]:
    """(the kernel to run, whether it computes only the first output): the first-output
    variant when the graph reads no other output of the op (cheaper), else the full one."""
    first_only = op_type in FIRST_OUTPUT_KERNELS and not later_outputs_read
    return (FIRST_OUTPUT_KERNELS if first_only else KERNELS).get(op_type), first_only


def run_kernel(
    op_type: str, inputs: Sequence[np.ndarray | None], attributes: dict[str, Any]
) -> tuple[np.ndarray, ...]:
    """Run the kernel of `op_type`; always returns a tuple of outputs."""
    fn = KERNELS.get(op_type)
    if fn is None:
        raise KernelError(f"no reference kernel for op type {op_type}")
    unknown = sorted(set(attributes) - accepted_attributes(fn))
    if unknown:
        raise KernelError(f"{op_type}: attribute {', '.join(unknown)} is not supported")
    out = fn(*inputs, **attributes)
    return out if isinstance(out, tuple) else (out,)


@functools.cache
def accepted_attributes(fn: Kernel) -> frozenset[str]:
    """The attribute names `fn` takes (its keyword-only parameters)."""
    params = inspect.signature(fn).parameters.values()
    return frozenset(p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY)
