"""Hardware limits (`dialects/npu/limits.py`) and the `npu` op verifiers that read them;
errors name the ONNX node."""

from __future__ import annotations

import pytest
from xdsl.utils.exceptions import VerifyException

from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import ops as npu
from dialects.npu.limits import conv_violation, pool_violation
from tests.compiler import test_npu_reference as e2e


def test_conv_limits_at_boundaries():
    ok = dict(kernel=[31, 31], strides=[7, 7], dilations=[31, 31], in_hw=[2047, 2047],
              out_hw=[2047, 1])  # fmt: skip
    assert conv_violation(**ok) is None
    assert "kernel" in conv_violation(**{**ok, "kernel": [32, 1]})
    assert "stride [8, 1] exceeds 7" in conv_violation(**{**ok, "strides": [8, 1]})
    assert "dilation" in conv_violation(**{**ok, "dilations": [1, 32]})
    assert "feature map" in conv_violation(**{**ok, "in_hw": [2048, 5]})
    assert "feature map" in conv_violation(**{**ok, "out_hw": [5, 2048]})
    assert "2-D" in conv_violation([3], [1], [1], [8], [8])


def test_pool_limits_at_boundaries():
    assert pool_violation([16, 16], [16, 16], False) is None
    assert "kernel [17, 2] exceeds 16" in pool_violation([17, 2], [1, 1], False)
    assert "stride" in pool_violation([2, 2], [1, 17], False)
    assert pool_violation([40, 40], [1, 1], True) is None  # global: no kernel limit
    assert "2-D" in pool_violation([2, 2, 2], [1, 1, 1], False)


@pytest.fixture
def lowered_pools(tmp_path):
    model = import_onnx(e2e.pools())
    quantize_model(model, e2e._dataset(tmp_path), QuantizeOptions(progress=False))
    return list(model.main.body.blocks[0].ops)


def test_lowered_ops_verify(lowered_pools):
    for op in lowered_pools:
        op.verify()


def test_conv_verifier_names_onnx_node(lowered_pools):
    conv = next(op for op in lowered_pools if isinstance(op, npu.Conv2dOp))
    conv.strides = npu.int_array([8, 1])
    with pytest.raises(VerifyException, match=r"npu.conv2d 'conv1' -> 'c1': stride \[8, 1\]"):
        conv.verify()


def test_pool_verifier_names_onnx_node(lowered_pools):
    pool = next(
        op for op in lowered_pools if isinstance(op, npu.PoolOp) and op.node_name == "maxpool"
    )
    pool.kernel_shape = npu.int_array([17, 2])
    with pytest.raises(VerifyException, match=r"npu.pool 'maxpool'.*kernel \[17, 2\] exceeds 16"):
        pool.verify()
    pool.kernel_shape = npu.int_array([2, 2])
    pool.kind = npu.StringAttr("median")
    with pytest.raises(VerifyException, match="'median'"):
        pool.verify()
