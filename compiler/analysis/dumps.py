"""The tensor dumps of accuracy analysis, written only on request (`dump=True`): RKNN writes
every tensor as text too (338 MB for one mobilenetv2 input, RESULTS.md §6); here `.npy` only.

    DIR/golden/<file>.npy      the float golden of each tensor
    DIR/simulator/<file>.npy   the simulator's value (entire), dequantized to float32
    DIR/map_name_to_file.txt   ONNX tensor name -> file stem (names with '/' are not files)

With several samples each one gets its folder: `golden/sample_<k>/`, `simulator/sample_<k>/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from compiler.analysis.report import write_text
from compiler.file_names import file_names

MAP_NAME = "map_name_to_file.txt"


def write_dumps(output_dir: Path, sample: int, samples: int,
                golden: Mapping[str, np.ndarray], simulator: Mapping[str, np.ndarray],
                ) -> list[Path]:  # fmt: skip
    """Write one sample's tensors; returns the files written."""
    stems = file_names(sorted(set(golden) | set(simulator)))
    sub = f"sample_{sample + 1}" if samples > 1 else ""
    written = []
    for folder, arrays in (("golden", golden), ("simulator", simulator)):
        target = output_dir / folder / sub
        target.mkdir(parents=True, exist_ok=True)
        for name, array in arrays.items():
            path = target / f"{stems[name]}.npy"
            np.save(path, np.asarray(array))
            written.append(path)
    map_path = output_dir / MAP_NAME
    write_text(map_path, "".join(f"{name} {stem}.npy\n" for name, stem in stems.items()))
    return [*written, map_path]
