"""`kernel_for`: the first-output variant of a kernel only when no later output is read."""

from __future__ import annotations

from runtime.kernels import FIRST_OUTPUT_KERNELS, KERNELS, kernel_for


def test_the_first_output_variant_when_only_output_0_is_read():
    op_type = next(iter(FIRST_OUTPUT_KERNELS))
    assert kernel_for(op_type, later_outputs_read=False) == (FIRST_OUTPUT_KERNELS[op_type], True)
    assert kernel_for(op_type, later_outputs_read=True) == (KERNELS[op_type], False)


def test_ops_without_a_variant_and_unknown_ops():
    assert "Relu" not in FIRST_OUTPUT_KERNELS
    assert kernel_for("Relu", later_outputs_read=False) == (KERNELS["Relu"], False)
    assert kernel_for("NoSuchOp", later_outputs_read=False) == (None, False)
