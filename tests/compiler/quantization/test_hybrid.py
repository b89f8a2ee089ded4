"""Hybrid quantization (`compiler/quantization/hybrid.py`, `proposal.py`) and the ONNX export
of the float-optimized graph (`compiler/onnx_export.py`).

- export: the graph, names, initializers and the `rknpu` domain of fused ops; an export of
  standard ops only runs in onnxruntime and gives the original model's outputs;
- step 1 writes `.model` (ONNX), `.data` (npz without pickle) and `.quantization.cfg`;
- step 2 on the unedited files builds what a direct build gives, bit for bit; an edited
  cfg widens the tensor it names; damaged or mismatched files are one-line errors;
- the proposal: what it chooses reaches the target (checked against onnxruntime's float
  outputs here), nothing is proposed when int8 meets the target, and no chosen tensor can
  be dropped without missing it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from compiler.build import build_model
from compiler.errors import CompilerError
from compiler.frontend import import_onnx
from compiler.interpreter import Interpreter
from compiler.onnx_export import EXTENSION_DOMAIN, export_onnx
from compiler.pipeline import parse_pipeline, run_pipeline
from compiler.quantization.cfg import QuantizationCfg, read_cfg, write_cfg
from compiler.quantization.hybrid import hybrid_step1, hybrid_step2
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from dialects.npu import ops as npu
from runtime.session import Session
from tests.helpers.npu import onnx_graph, ort
from tests.helpers.ort import run_model
from tests.zoo import zoo_file

RNG = np.random.default_rng(5)


def cnn() -> onnx.ModelProto:
    """x -> Conv+Relu -> Conv -> Add(residual) -> GlobalAveragePool -> y."""
    w1 = (RNG.standard_normal((8, 3, 3, 3)) * 0.4).astype(np.float32)
    w2 = (RNG.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], "conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], "relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], "conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["c2", "r1"], ["s"], "add"),
        helper.make_node("GlobalAveragePool", ["s"], ["y"], "gap"),
    ]
    return onnx_graph(nodes, [("x", [1, 3, 8, 8])], ["y"],
                      {"w1": w1, "b1": RNG.standard_normal(8).astype(np.float32), "w2": w2})  # fmt: skip


def dataset(tmp_path: Path, count: int = 4) -> Path:
    for i in range(count):
        np.save(tmp_path / f"s{i}.npy", RNG.standard_normal((1, 3, 8, 8)).astype(np.float32))
    listing = tmp_path / "dataset.txt"
    listing.write_text("".join(f"s{i}.npy\n" for i in range(count)))
    return listing


def saved(proto: onnx.ModelProto, path: Path) -> Path:
    onnx.save(proto, path)
    return path


# ---------------------------------------------------------------------- export


def test_export_keeps_names_weights_and_marks_fused_ops(tmp_path):
    proto = cnn()
    model = import_onnx(saved(proto, tmp_path / "m.onnx"))
    run_pipeline(model, parse_pipeline("float-pipeline{level=3}"))
    exported = export_onnx(model)
    types = [(n.op_type, n.domain) for n in exported.graph.node]
    assert ("FusedConv", EXTENSION_DOMAIN) in types  # conv1 + relu1, conv2 + add
    assert [i.name for i in exported.graph.input] == ["x"]
    assert [o.name for o in exported.graph.output] == ["y"]
    weights = {t.name: onnx.numpy_helper.to_array(t) for t in exported.graph.initializer}
    originals = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    assert any(np.array_equal(w, originals["w1"]) for w in weights.values())
    fused = next(n for n in exported.graph.node if n.op_type == "FusedConv")
    assert {a.name for a in fused.attribute} >= {"activation", "pads"}


def test_export_of_standard_ops_runs_like_the_original(tmp_path):
    proto = cnn()
    model = import_onnx(saved(proto, tmp_path / "m.onnx"))  # no passes: standard ops only
    exported = export_onnx(model)
    x = RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
    (expected,) = run_model(proto, {"x": x})
    (got,) = run_model(exported, {"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------- steps 1 and 2


def step1(tmp_path: Path, **kwargs):
    model = import_onnx(saved(cnn(), tmp_path / "m.onnx"))
    options = QuantizeOptions(progress=False)
    return hybrid_step1(model, dataset(tmp_path), options, tmp_path / "out" / "m", **kwargs)


def test_step1_writes_the_three_files(tmp_path):
    files = step1(tmp_path)
    assert files.model.name == "m.model" and files.data.name == "m.data"
    assert files.cfg.name == "m.quantization.cfg"
    graph = onnx.load(str(files.model)).graph
    assert any(n.op_type == "FusedConv" for n in graph.node)
    with np.load(files.data, allow_pickle=False) as data:  # no pickle anywhere
        assert "ir" in data.files and "config" in data.files
    cfg = read_cfg(files.cfg)
    assert cfg.custom_quantize_layers == {}
    assert {"x", "r1"} <= set(cfg.quantize_parameters)  # tensors the .model names


def test_step2_without_edits_builds_what_a_direct_build_gives(tmp_path):
    files = step1(tmp_path)
    model, options = hybrid_step2(files.model, files.data, files.cfg)
    hybrid = build_model(model, None, options, statistics={})
    direct = build_model(import_onnx(tmp_path / "m.onnx"), tmp_path / "dataset.txt",
                         QuantizeOptions(progress=False))  # fmt: skip
    x = {"x": RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_array_equal(Session(hybrid.container).run(x)["y"],
                                  Session(direct.container).run(x)["y"])  # fmt: skip


def test_step2_applies_the_users_edit(tmp_path):
    files = step1(tmp_path)
    cfg = read_cfg(files.cfg)
    cfg.custom_quantize_layers["r1"] = "i16"
    write_cfg(cfg, files.cfg)
    model, options = hybrid_step2(files.model, files.data, files.cfg)
    quantize_model(model, None, options, statistics={})
    producers = [op for op in model.main.body.blocks[0].ops
                 if isinstance(op, npu.NpuOp) and "r1" in op.output_names]  # fmt: skip
    # the convolution computes r1 in int16; its int8 readers get it through a requantize
    assert [(op.name, op.quant.element) for op in producers] == [
        ("npu.conv2d", "i16"),
        ("npu.requantize", "i8"),
    ]


def test_step2_refuses_damaged_or_mismatched_files(tmp_path):
    files = step1(tmp_path)
    other = tmp_path / "other.model"
    other.write_bytes(files.model.read_bytes() + b"\0")
    with pytest.raises(CompilerError, match=r"is not the \.model step 1 wrote"):
        hybrid_step2(other, files.data, files.cfg)
    broken = tmp_path / "broken.data"
    broken.write_bytes(files.data.read_bytes()[:100])
    with pytest.raises(CompilerError, match=r"not a hybrid \.data file"):
        hybrid_step2(files.model, broken, files.cfg)
    with pytest.raises(CompilerError, match="no such file"):
        hybrid_step2(tmp_path / "missing.model", files.data, files.cfg)


def test_step1_refuses_a_given_cfg(tmp_path):
    model = import_onnx(saved(cnn(), tmp_path / "m.onnx"))
    cfg_options = QuantizeOptions(progress=False, cfg=read_cfg(step1(tmp_path).cfg))
    with pytest.raises(CompilerError, match="writes the cfg"):
        hybrid_step1(model, tmp_path / "dataset.txt", cfg_options, tmp_path / "again")


# ---------------------------------------------------------------------- the proposal


def digits(tmp_path: Path) -> tuple[Path, Path]:
    path = zoo_file("digits/digits_cnn.onnx")
    folder = path.parent / "data16"
    listing = tmp_path / "dataset.txt"
    listing.write_text("".join(f"{folder / line}\n"
                               for line in (folder / "dataset.txt").read_text().split()[:8]))  # fmt: skip
    return path, listing


def ort_cosine(path: Path, listing: Path, overrides: dict[str, str]) -> float:
    """The output cosine against onnxruntime's float model, on the first sample (what the
    proposal measured with proposal_samples=1), computed here in plain numpy."""
    sample = np.load(listing.read_text().split()[0])
    sample = sample if sample.ndim == 4 else sample[None]
    (expected,) = ort(onnx.load(str(path)), {"input": sample})
    model = import_onnx(path)
    options = QuantizeOptions(progress=False, cfg=QuantizationCfg(custom_quantize_layers=overrides))
    quantize_model(model, listing, options)
    got = Interpreter(model).run({"input": sample}).outputs["logits"]
    a, b = got.ravel().astype(np.float64), expected.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_proposal_reaches_the_target_with_a_minimal_set(tmp_path):
    path, listing = digits(tmp_path)
    target = 0.99998  # int8 gives 0.99992 on these 8 calibration samples
    files = hybrid_step1(import_onnx(path), listing, QuantizeOptions(progress=False),
                         tmp_path / "p", proposal=True, target_cosine=target)  # fmt: skip
    proposal = files.proposal
    assert proposal is not None and proposal.int8_cosine < target
    chosen = proposal.overrides
    assert chosen and set(chosen.values()) == {"i16"}
    assert proposal.cosine >= target and not any("not reached" in n for n in proposal.notes)
    # reported beside the all-float16 model (nearly exact; its predicted time as well)
    assert proposal.float16_cosine > proposal.cosine
    assert proposal.float16_time_us > 0 and proposal.time_us > 0
    assert ort_cosine(path, listing, chosen) >= target
    for tensor in chosen:  # pruned: every chosen tensor is needed
        rest = {t: d for t, d in chosen.items() if t != tensor}
        assert ort_cosine(path, listing, rest) < target, tensor
    text = files.cfg.read_text()
    assert all(f"{t}: int16  # gains" in text for t in chosen)
    assert read_cfg(files.cfg).custom_quantize_layers == chosen


def test_nothing_is_proposed_when_int8_meets_the_target(tmp_path):
    path, listing = digits(tmp_path)
    files = hybrid_step1(import_onnx(path), listing, QuantizeOptions(progress=False),
                         tmp_path / "p", proposal=True, target_cosine=0.99)  # fmt: skip
    assert files.proposal is not None and files.proposal.overrides == {}
    assert files.proposal.int8_cosine >= 0.99
    assert read_cfg(files.cfg).custom_quantize_layers == {}


# ---------------------------------------------------------------------- command line


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str]:
    from compiler.cli import main

    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_cli_steps_build_a_container(tmp_path, capsys):
    model = saved(cnn(), tmp_path / "m.onnx")
    code, err = cli(capsys, "hybrid-step1", model, "--dataset", dataset(tmp_path),
                    "--no-progress", "-o", tmp_path / "h")  # fmt: skip
    assert code == 0, err
    cfg = read_cfg(tmp_path / "h.quantization.cfg")
    cfg.custom_quantize_layers["r1"] = "f16"
    write_cfg(cfg, tmp_path / "h.quantization.cfg")
    code, err = cli(capsys, "hybrid-step2", tmp_path / "h.model", tmp_path / "h.data",
                    tmp_path / "h.quantization.cfg", "-o", tmp_path / "h.rknn")  # fmt: skip
    assert code == 0, err
    ops = Session(tmp_path / "h.rknn").metadata["ops"]
    assert any("r1" in op["outputs"] and op["op"] == "npu.conv2d" for op in ops)


@pytest.mark.parametrize(
    ("extra", "message"),
    [([], "give --dataset"), (["--dataset", "DS", "--target-cosine", "1.5"], "expected 0 < c")],
)
def test_cli_step1_bad_input_is_one_line(tmp_path, capsys, extra, message):
    model = saved(cnn(), tmp_path / "m.onnx")
    extra = [str(dataset(tmp_path)) if e == "DS" else e for e in extra]
    code, err = cli(capsys, "hybrid-step1", model, *extra, "-o", tmp_path / "h")
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_the_proposal_widens_to_float16_when_int16_ranges_clip(tmp_path):
    # ranges a third of what the samples reach (as an input beyond the calibration images
    # would be): int16 keeps them and clips, float16 has none, so the search widens to f16
    import dataclasses

    from compiler.quantization.proposal import ProposalSearch, proposal_feeds
    from compiler.quantization.quantize import calibrate, optimize_for_quantization
    from tests.helpers.compare import cosine

    model = import_onnx(saved(cnn(), tmp_path / "m.onnx"))
    options = QuantizeOptions(progress=False)
    optimize_for_quantization(model, options)
    listing = dataset(tmp_path)
    statistics = {name: dataclasses.replace(s, min=s.min / 3, max=s.max / 3)
                  for name, s in calibrate(model, listing, options).items()}  # fmt: skip
    feeds = proposal_feeds(listing, model, None, 2)
    search = ProposalSearch(model.clone(), statistics, options, feeds)
    proposal = search.run(0.999)
    assert proposal.overrides and set(proposal.overrides.values()) == {"f16"}
    assert any("in i16 miss the target" in note for note in proposal.notes)
    # checked here: the chosen set, quantized and run, against the float model
    chosen = Interpreter(search.quantized(proposal.overrides))
    for feed in feeds:
        expected = Interpreter(model).run(feed.normalized).outputs["y"]
        assert cosine(chosen.run(feed.raw).outputs["y"], expected) >= 0.999
