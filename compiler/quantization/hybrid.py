"""Hybrid quantization in RKNN's two steps.

`hybrid_step1(model, dataset, options, prefix, ...)` optimizes the float graph, calibrates,
and writes three files:

- `<prefix>.model`: the float-optimized graph as ONNX (`compiler.onnx_export`), to find
  tensor names in Netron (the names the cfg uses);
- `<prefix>.data`: what step 2 rebuilds from, in a safe format (an `.npz`, read with
  `allow_pickle=False`; RKNN's is a pickle): the float-optimized IR (MLIR text), its
  weights, the build options and the source (JSON);
- `<prefix>.quantization.cfg`: RKNN's YAML, every calibrated tensor's parameters and
  `custom_quantize_layers` (empty, or the proposal with, per tensor, the cosine reached and
  the predicted time it costs as a comment).

The user edits the cfg; `hybrid_step2(model_file, data_file, cfg_file)` reads the three
back and returns the model and the options (with the cfg) to build: the cfg's parameters
are used as they are, no dataset is read again.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from backends.fileio import atomic_write
from compiler import __version__
from compiler.calibration.dataset import InputPreprocess
from compiler.calibration.statistics import TensorStatistics
from compiler.errors import CompilerError
from compiler.ir_model import IRModel, parse_module
from compiler.onnx_export import export_onnx
from compiler.quantization.cfg import read_cfg, write_cfg
from compiler.quantization.proposal import Proposal, ProposalSearch, proposal_feeds
from compiler.quantization.quantize import (
    QuantizeOptions,
    calibrate,
    optimize_for_quantization,
    quantize_optimized,
)
from dialects.weights import WeightTable

DATA_FORMAT = "rknpu-hybrid-data"
DATA_VERSION = 1
IR_KEY, CONFIG_KEY, WEIGHT_PREFIX = "ir", "config", "weights/"


@dataclass
class HybridFiles:
    model: Path
    data: Path
    cfg: Path
    proposal: Proposal | None = None


def hybrid_step1(model: IRModel, dataset: Path | str, options: QuantizeOptions,
                 prefix: Path | str, proposal: bool = False, proposal_samples: int = 1,
                 target_cosine: float = 0.99, source: str = "") -> HybridFiles:  # fmt: skip
    """Write `<prefix>.model`, `.data` and `.quantization.cfg` (see the module doc);
    `model` is changed in place (optimized, then quantized for the cfg's parameters)."""
    if options.cfg is not None:
        raise CompilerError("hybrid step 1 writes the cfg: do not give one (step 2 reads it)")
    prepared = optimize_for_quantization(model, options)
    if prepared.qdq:
        raise CompilerError("a pre-quantized (QDQ) model has its parameters already: hybrid "
                            "quantization is for models calibrated here")  # fmt: skip
    statistics = calibrate(model, dataset, options)
    float_ir = model.clone()
    found = _proposal(float_ir, statistics, options, dataset, proposal_samples, target_cosine,
                      proposal)  # fmt: skip
    overrides = found.overrides if found else {}
    # the dataset again only for weight rounding on the data, if asked
    result = quantize_optimized(prepared, dataset, options, statistics)
    cfg = result.to_cfg(overrides)
    cfg.layer_notes = found.layer_notes() if found else {}
    files = _paths(Path(prefix))
    _write_model(float_ir, files.model)
    write_data(float_ir, options, files.data, source)
    write_cfg(cfg, files.cfg)
    files.proposal = found
    return files


def hybrid_step2(model_file: Path | str, data_file: Path | str,
                 cfg_file: Path | str) -> tuple[IRModel, QuantizeOptions]:  # fmt: skip
    """The float-optimized model and the options (with the edited cfg) to build, e.g.
    `build_model(model, None, options, statistics={})`: the cfg gives every parameter."""
    if not Path(model_file).is_file():
        raise CompilerError(f"{model_file}: no such file (step 1's .model)")
    model, options, digest = read_data(data_file)
    if _digest(Path(model_file).read_bytes()) != digest:
        raise CompilerError(f"{model_file} is not the .model step 1 wrote beside {data_file}")
    cfg = read_cfg(cfg_file)
    return model, replace(options, cfg=cfg)


def _proposal(float_ir: IRModel, statistics: dict[str, TensorStatistics],
              options: QuantizeOptions, dataset: Path | str, samples: int,
              target_cosine: float, wanted: bool) -> Proposal | None:  # fmt: skip
    if not wanted:
        return None
    feeds = proposal_feeds(dataset, float_ir, options.preprocess, samples)
    search = ProposalSearch(float_ir, statistics, options, feeds, progress=options.progress)
    return search.run(target_cosine)


def _paths(prefix: Path) -> HybridFiles:
    name = prefix.name
    return HybridFiles(prefix.with_name(f"{name}.model"), prefix.with_name(f"{name}.data"),
                       prefix.with_name(f"{name}.quantization.cfg"))  # fmt: skip


def _write_model(model: IRModel, path: Path) -> None:
    with atomic_write(path, "wb") as f:
        f.write(export_onnx(model).SerializeToString())


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------- the .data file


def write_data(model: IRModel, options: QuantizeOptions, path: Path, source: str = "") -> None:
    """The float-optimized IR, its weights and the options, as an `.npz` (no pickle); the
    digest of the `.model` written beside it ties the three files together."""
    model_path = path.with_suffix(".model")
    config = {
        "format": DATA_FORMAT,
        "version": DATA_VERSION,
        "tool": __version__,
        "source": source,
        "model_sha256": _digest(model_path.read_bytes()) if model_path.is_file() else "",
        "options": options_to_json(options),
    }
    arrays = {f"{WEIGHT_PREFIX}{name}": model.weights[name] for name in model.used_weights()}
    arrays[IR_KEY] = np.array(str(model.module))
    arrays[CONFIG_KEY] = np.array(json.dumps(config, sort_keys=True))
    with atomic_write(path, "wb") as f:
        np.savez(f, **arrays)


def read_data(path: Path | str) -> tuple[IRModel, QuantizeOptions, str]:
    """(model, options, the .model's digest) of a `.data` file; a one-line error when it is
    not one."""
    try:
        with np.load(path, allow_pickle=False) as data:
            config = json.loads(str(data[CONFIG_KEY]))
            text = str(data[IR_KEY])
            weights = {k.removeprefix(WEIGHT_PREFIX): data[k] for k in data.files
                       if k.startswith(WEIGHT_PREFIX)}  # fmt: skip
    except FileNotFoundError:
        raise CompilerError(f"{path}: no such file (step 1's .data)") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CompilerError(f"{path}: not a hybrid .data file ({exc})") from None
    if config.get("format") != DATA_FORMAT or config.get("version") != DATA_VERSION:
        raise CompilerError(f"{path}: not a version-{DATA_VERSION} hybrid .data file")
    model = IRModel(parse_module(text, str(path)), WeightTable(weights))
    return model, options_from_json(config["options"]), config.get("model_sha256", "")


def options_to_json(options: QuantizeOptions) -> dict:
    data = asdict(replace(options, cfg=None))
    data.pop("cfg")
    data["cpu_ops"] = sorted(options.cpu_ops)
    return data


def options_from_json(data: dict) -> QuantizeOptions:
    data = dict(data)
    pre = data.get("preprocess")
    data["preprocess"] = [InputPreprocess(**p) if p else None for p in pre] if pre else None
    data["cpu_ops"] = frozenset(data.get("cpu_ops", ()))
    try:
        return QuantizeOptions(**data)
    except TypeError as exc:
        raise CompilerError(f"hybrid .data: options not understood ({exc})") from None
