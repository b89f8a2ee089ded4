"""The driver: ONNX import, the reference interpreter, pass pipelines, the command line
(`python -m compiler ...`), and later calibration, build and the RKNN-compatible API."""

__version__ = "0.1.0"
