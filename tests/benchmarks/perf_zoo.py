"""The cycle model (`runtime.perf`) against published RK3588 numbers. Prints two markdown
tables; not a pass/fail test.

1. Zoo architectures (and a ResNet-50 written here with resnet50-v2-7's convolution shapes)
   built int8 for rk3588 and estimated on one core (core mask auto): predicted time and FPS
   beside the rknn_model_zoo v2.3.2 RK3588 single-core FPS (research/anchors.md §4.1) where
   the published network is the same at the same input.
2. The per-layer rows of RKNN's eval_perf table (fig 8-3, research/sdk_inventory.md §4.1):
   each layer built alone (tests/runtime/perf_layers.py), predicted NPUCycles and DDRCycles
   of that op beside the published ones.

    python tests/benchmarks/perf_zoo.py [--models a,b] [--samples 4] [--no-layers]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backends.container import read_container, write_container
from compiler.build import build_model
from compiler.frontend import import_onnx
from compiler.quantization.quantize import QuantizeOptions
from runtime.perf import perf_report
from tests.benchmarks.quantization_accuracy import dataset_for, preprocess
from tests.runtime.perf_layers import binary_model, build, conv_model, resnet50_model
from tests.zoo import MODELS, model_path

ZOO_MODELS = ("resnet18_224", "mobilenetv2_224", "yolov8n_like_320", "resnet50_224")
# anchors §4.1, rknn_model_zoo v2.3.2, RK3588 single core: (published model, input, FPS,
# whether our zoo model is the same network at the same input)
PUBLISHED = {
    "mobilenetv2_224": ("mobilenetv2-12", "224", 450.7, True),
    "resnet18_224": ("resnet50-v2-7 (a deeper ResNet)", "224", 110.1, False),
    # not in the zoo: tests/runtime/perf_layers.py writes it (resnet50-v2-7's conv shapes)
    "resnet50_224": ("resnet50-v2-7", "224", 110.1, True),
    "yolov8n_like_320": ("yolov8n", "640", 73.5, False),
}
# sdk §4.1 fig 8-3: (row, layer, builder args, published DDRCycles, NPUCycles)
LAYERS = [
    (1, "Conv 3->32 3x3 s2, 480x640", ("conv", (1, 3, 480, 640), 32, 3, 2), 794117, 1382400),
    (2, "Conv 32->64 3x3 s2, 240x320", ("conv", (1, 32, 240, 320), 64, 3, 2), 665207, 691200),
    (3, "Conv 64->32 1x1, 120x160", ("conv", (1, 64, 120, 160), 32, 1, 1), 332036, 153600),
    (4, "Conv 64->32 1x1, 120x160", ("conv", (1, 64, 120, 160), 32, 1, 1), 332036, 153600),
    (5, "Conv 32->32 1x1, 120x160", ("conv", (1, 32, 120, 160), 32, 1, 1), 248988, 153600),
    (6, "Conv 32->32 3x3, 120x160", ("conv", (1, 32, 120, 160), 32, 3, 1), 250087, 345600),
    (7, "Add 32ch, 120x160", ("Add", (1, 32, 120, 160)), 329574, None),
    (8, "Concat 2x32ch, 120x160", ("Concat", (1, 32, 120, 160)), 494407, None),
    (9, "Conv 64->64 1x1, 120x160", ("conv", (1, 64, 120, 160), 64, 1, 1), 497258, 307200),
    (10, "Conv 64->128 3x3 s2, 120x160", ("conv", (1, 64, 120, 160), 128, 3, 2), 401854, 691200),
    (11, "Conv 128->64 1x1, 60x80", ("conv", (1, 128, 60, 80), 64, 1, 1), 167682, 76800),
]


def built(name: str, samples: int, folder: Path) -> Path:
    """The container of a zoo model, or of the ResNet-50 written here."""
    if name == "resnet50_224":
        return build(resnet50_model(), folder, name, samples)
    zm = next(m for m in MODELS if m.name == name)
    options = QuantizeOptions(preprocess=preprocess(zm), progress=False, target="rk3588")
    result = build_model(import_onnx(str(model_path(zm))), dataset_for(zm, samples, folder),
                         options)  # fmt: skip
    path = folder / f"{name}.rknn"
    write_container(result.container, path)
    return path


def zoo_row(name: str, samples: int, folder: Path) -> str:
    report = perf_report(read_container(built(name, samples, folder)), "auto")
    npu = sum(r.time_us for r in report.rows if r.target == "NPU")
    published, size, fps, same = PUBLISHED[name]
    error = f"{100 * (report.fps - fps) / fps:+.0f} %" if same else "n/a (not the same network)"
    moved = report.total_rw_kb * 1024 / 1e6
    return (f"| {name} | {report.total_time_us / 1000:.2f} ms ({npu / 1000:.2f} NPU) | "
            f"{report.fps:.1f} | {moved:.1f} MB | {len(report.not_timed)} | {published} "
            f"@{size}: {fps} FPS ({1000 / fps:.2f} ms) | {error} |")  # fmt: skip


def layer_rows(folder: Path) -> list[str]:
    rows = []
    for number, label, spec, ddr, npu in LAYERS:
        if spec[0] == "conv":
            model, node = conv_model(spec[1], spec[2], spec[3], spec[4]), "/layer/Conv"
        else:
            model, node = binary_model(spec[0], spec[1]), f"/layer/{spec[0]}"
        report = perf_report(read_container(build(model, folder, f"fig83_{number}")))
        row = next(r for r in report.rows if r.full_name.endswith(":" + node))
        npu_text = (f"{row.npu_cycles} | {npu} | {100 * (row.npu_cycles - npu) / npu:+.1f} %"
                    if npu else f"({row.npu_cycles}) | - | -")  # fmt: skip
        rows.append(f"| {number} | {label} | {row.op_type} | {row.task_number} | {npu_text} | "
                    f"{row.ddr_cycles:.0f} | {ddr} | {100 * (row.ddr_cycles - ddr) / ddr:+.1f} % |")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ZOO_MODELS))
    parser.add_argument("--samples", type=int, default=4, help="calibration samples")
    parser.add_argument("--no-layers", action="store_true", help="skip the fig 8-3 layers")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("| model | predicted time (NPU part) | predicted FPS | DDR traffic | NPU ops not "
              "timed | published RK3588 1-core | FPS error |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for name in filter(None, args.models.split(",")):
            print(zoo_row(name, args.samples, folder), flush=True)
        if args.no_layers:
            return
        print()
        print("| fig 8-3 row | layer | our op | tasks | NPUCycles predicted | published | "
              "error | DDRCycles predicted | published | error |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|")
        for line in layer_rows(folder):
            print(line, flush=True)


if __name__ == "__main__":
    main()
