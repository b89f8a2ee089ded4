"""The `npu` dialect: quantized ops the NPU runs (`ops.py`), the `#npu.quant` attribute
(`attributes.py`), the numerics contract every quantized computation obeys (`numerics.py`)
and the register-field limits the verifiers enforce (`limits.py`)."""

from xdsl.ir import Dialect

from dialects.npu.attributes import QuantAttr
from dialects.npu.ops import NPU_OPS, NpuOp, quant_of

NPU = Dialect("npu", list(NPU_OPS), [QuantAttr])

__all__ = ["NPU", "NPU_OPS", "NpuOp", "QuantAttr", "quant_of"]
