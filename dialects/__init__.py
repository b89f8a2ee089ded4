"""IR definitions only: the `onnx` frontend dialect, the weight-handle attribute and its side
table, element-type mappings. Later: the `npu` quantized dialect.

This package imports nothing else of ours.
"""
