"""Our hybrid-quantization proposal against RKNN-Toolkit2's on the zoo: tensors widened,
output cosine and predicted latency (our cycle model, rk3588, one core), next to all-int8,
all-int16, all-float16, and RKNN's proposed set (RKNN widens to float16; its set is also
built as int16, which our NPU code covers, for a like-for-like latency).

    python tests/benchmarks/hybrid_proposal.py [--models a,b] [--samples 8] [--target 0.995]

RKNN's proposals (tests/benchmarks/data/rknn_hybrid_proposals.json) were computed by
RKNN-Toolkit2 2.5.0 on the same calibration images (see the file's `source`). Its tensor
names are mapped onto ours: a tensor our graph fused away (a Conv's output before its
Clip) maps to the fused op's output, `<input>_int8` to the model input; the rest are
counted as unmatched.

Cosines are measured on each model's real zoo input (tests/zoo.py) against the float model
on the reference executor (bit-exact with the simulator); our proposal searched on the
first calibration sample, as RKNN's does. Float16 layers run on the NPU where code
generation covers them (README, "Backend"); the rest run on the CPU and are timed by the
CPU model.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.ir_model import IRModel
from compiler.quantization.proposal import ProposalSearch, output_cosine, proposal_feeds
from compiler.quantization.quantize import QuantizeOptions, calibrate, optimize_for_quantization
from dialects.onnx import OnnxOp
from dialects.onnx.fused import PREACTIVATION
from runtime.perf import perf_report
from tests.benchmarks.quantization_accuracy import dataset_for, preprocess, raw_input
from tests.zoo import BY_NAME, ZooModel, model_path, real_input

RKNN = Path(__file__).with_name("data") / "rknn_hybrid_proposals.json"
RKNN_NAMES = {"mobilenetv2_224": "mobilenetv2_224_op13", "resnet18_224": "resnet18_224_op13",
              "mobilenetv3s_224": "mobilenetv3s_224_op17",
              "yolov8n_like_320": "yolov8n_like_320_op13",
              "unet_small_256": "unet_small_256_op13"}  # fmt: skip
DTYPE = {"float16": "f16", "int16": "i16", "int8": "i8"}


def rknn_overrides(tensors: dict[str, str], model: IRModel, wide: str | None = None
                   ) -> tuple[dict[str, str], list[str]]:  # fmt: skip
    """RKNN's tensor -> dtype map in our names (and `wide` instead of its dtype when given);
    the names that match nothing."""
    outputs, preact = set(), {}
    for op in model.main.body.blocks[0].ops:
        if isinstance(op, OnnxOp):
            outputs |= set(op.output_names)
            attr = op.attributes.get(PREACTIVATION)
            if attr is not None and op.output_names:
                preact[attr.data] = op.output_names[0]
    inputs = {f"{spec.name}_int8": spec.name for spec in model.inputs}
    mapped, unmatched = {}, []
    for name, dtype in tensors.items():
        ours = name if name in outputs else preact.get(name) or inputs.get(name)
        if ours is None:
            unmatched.append(name)
        else:
            mapped[ours] = wide or DTYPE[dtype]
    return mapped, unmatched


class Measure:
    """Cosine on the real input and predicted latency of one configuration."""

    def __init__(self, search: ProposalSearch, zm: ZooModel) -> None:
        self.search = search
        normalized = real_input(zm)
        name = search.prepared.inputs[0].name
        self.raw = {name: raw_input(zm, normalized)}
        self.golden = [Interpreter(search.prepared).run({name: normalized}).outputs]

    def __call__(self, overrides: dict[str, str], dtype: str | None = None) -> tuple[float, float]:
        model = self.search.quantized(overrides, dtype)
        cosine = output_cosine([Interpreter(model).run(self.raw).outputs], self.golden)
        build = self.search.build(overrides, dtype)
        return cosine, perf_report(build.container).total_time_us / 1000


def row(zm: ZooModel, rknn: dict, samples: int, target: float, folder: Path,
        proposal_samples: int = 1) -> dict:  # fmt: skip
    options = QuantizeOptions(preprocess=preprocess(zm), progress=False)
    model = import_onnx(model_path(zm))
    optimize_for_quantization(model, options)
    dataset = dataset_for(zm, samples, folder)
    statistics = calibrate(model, dataset, options)
    feeds = proposal_feeds(dataset, model, options.preprocess, proposal_samples)
    search = ProposalSearch(model, statistics, options, feeds)
    start = time.perf_counter()
    proposal = search.run(target)
    seconds = time.perf_counter() - start
    measure = Measure(search, zm)
    result = {"model": zm.name, "search_s": seconds, "runs": proposal.evaluations,
              "ours": len(proposal.overrides), "ours_search_cosine": proposal.cosine,
              "notes": proposal.notes}  # fmt: skip
    for key, overrides, dtype in (("int8", {}, None), ("int16", {}, "i16"),
                                  ("float16", {}, "f16"),
                                  ("proposal", proposal.overrides, None)):  # fmt: skip
        result[key] = measure(overrides, dtype)
    tensors = rknn.get(RKNN_NAMES.get(zm.name, zm.name), {}).get("tensors")
    if tensors is not None:
        as_f16, unmatched = rknn_overrides(tensors, model)
        as_i16, _ = rknn_overrides(tensors, model, "i16")
        result.update(rknn_n=len(tensors), rknn_matched=len(as_f16), rknn_unmatched=unmatched,
                      rknn_f16=measure(as_f16), rknn_i16=measure(as_i16))  # fmt: skip
    return result


def table_line(r: dict) -> str:
    def cell(pair: tuple[float, float] | None) -> str:
        return "-" if pair is None else f"{pair[0]:.4f} / {pair[1]:.2f} ms"

    rknn = (f"{r['rknn_n']} ({r['rknn_matched']}) | {cell(r.get('rknn_f16'))} | "
            f"{cell(r.get('rknn_i16'))}") if "rknn_n" in r else "- | - | -"  # fmt: skip
    return (f"| {r['model']} | {cell(r['int8'])} | {r['ours']} | {cell(r['proposal'])} | "
            f"{rknn} | {cell(r['int16'])} | {cell(r['float16'])} | {r['search_s']:.0f} s "
            f"({r['runs']}) |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mobilenetv2_224",
                        help="comma-separated zoo names (image models)")  # fmt: skip
    parser.add_argument("--samples", type=int, default=8, help="calibration images")
    parser.add_argument("--target", type=float, default=0.995, help="target output cosine")
    parser.add_argument("--proposal-samples", type=int, default=1,
                        help="calibration samples the proposal measures on (RKNN: 1)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args()
    rknn = json.loads(RKNN.read_text())["models"]
    print("| model | int8 cos / time | ours: tensors | ours cos / time | RKNN: tensors "
          "(matched) | RKNN set float16 | RKNN set as int16 | all int16 | all float16 | "
          "search (runs) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rows.append(row(BY_NAME[name], rknn, args.samples, args.target, Path(tmp),
                            args.proposal_samples))  # fmt: skip
            print(table_line(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
