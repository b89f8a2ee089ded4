"""Calibration: run the float model on sample inputs and choose, for every float tensor, the
range its quantized form covers.

- `dataset`: the samples of an RKNN `dataset.txt` (.npy arrays and images), normalised as
  the float model expects (`mean_values`, `std_values`, `quant_img_RGB2BGR`), read lazily.
- `statistics`: the reference interpreter runs each sample and every float tensor (inputs
  included) is reduced to its statistics at once. Pass 1 collects min, max and count; pass 2,
  only for algorithms that need a distribution, a histogram of `HISTOGRAM_BINS` bins over
  [min, max]. Memory is bounded by one sample's tensors plus one histogram per tensor,
  whatever the number of samples: no activation is kept across samples.
- `algorithms`: a range per tensor from its statistics: `normal` (min/max), `mmse` (least
  quantization error) or `kl_divergence` (TensorRT-style entropy calibration).

Scales and zero points follow from the ranges through `dialects.npu.numerics`.
"""

from compiler.calibration.algorithms import ALGORITHMS, choose_range
from compiler.calibration.dataset import (
    CalibrationSet,
    InputPreprocess,
    channel_axis,
    check_preprocess,
    image_layout,
    load_calibration_set,
    normalize,
)
from compiler.calibration.statistics import HISTOGRAM_BINS, TensorStatistics, collect_statistics

__all__ = [
    "ALGORITHMS",
    "HISTOGRAM_BINS",
    "CalibrationSet",
    "InputPreprocess",
    "TensorStatistics",
    "channel_axis",
    "check_preprocess",
    "choose_range",
    "collect_statistics",
    "image_layout",
    "load_calibration_set",
    "normalize",
]
