"""Everything that executes: numpy kernels for ONNX ops (the reference semantics, also the
CPU-fallback implementation), and later the container loader, the register-level simulator,
the cycle model and the hardware backend.

`runtime` never imports `compiler` or `passes`: a deployed container needs only this package.
"""
