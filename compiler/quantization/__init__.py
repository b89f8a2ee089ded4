"""Quantization: calibration ranges to parameters, configs, lowering to the npu dialect."""
