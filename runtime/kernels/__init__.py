"""Numpy implementations of ONNX ops, one module per op family.

Importing this package registers every kernel in `KERNELS` (see `registry` for the calling
convention).
"""

from runtime.kernels import (  # noqa: F401  (imported for their registrations)
    activation,
    conv,
    elementwise,
    fused,
    linalg,
    normalization,
    pooling,
    quantize,
    reduce,
    resize,
    tensor,
)
from runtime.kernels.registry import (
    FIRST_OUTPUT_KERNELS,
    KERNELS,
    KernelError,
    first_output_kernel,
    kernel,
    kernel_for,
    run_kernel,
)

__all__ = [
    "FIRST_OUTPUT_KERNELS",
    "KERNELS",
    "KernelError",
    "first_output_kernel",
    "kernel",
    "kernel_for",
    "run_kernel",
]
