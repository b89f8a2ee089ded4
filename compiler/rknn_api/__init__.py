"""What `compiler.api.RKNN` maps RKNN-Toolkit2's calls onto, one concern per module:

- `options`: `config()`'s option names and values -> `QuantizeOptions` (checked at config);
- `loading`: `load_onnx()`'s inputs / input_size_list / outputs -> `import_onnx`;
- `samples`: `accuracy_analysis()`'s input files -> raw arrays.
"""
