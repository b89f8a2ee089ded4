"""ONNX -> `onnx` dialect: loading, opset normalization, static shapes, IR building."""

from compiler.frontend.importer import import_onnx, parse_input_shapes

__all__ = ["import_onnx", "parse_input_shapes"]
