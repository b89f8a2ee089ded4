"""A tiny bundled model for the README's first command and for smoke tests."""

from pathlib import Path

EXAMPLES = Path(__file__).parent
TINY_CNN = EXAMPLES / "tiny_cnn.onnx"
TINY_CNN_INPUT = EXAMPLES / "tiny_cnn_input.npy"
