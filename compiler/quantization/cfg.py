"""RKNN-Toolkit2's hybrid-quantization config, `<model>.quantization.cfg` (user guide §6.3),
read and written in RKNN's YAML format so that a config moves between the two tools::

    custom_quantize_layers:            # tensor -> the dtype its producing op computes in
        Conv__350:0: float16
    quantize_parameters:               # tensor -> its quantization (lists: one per channel)
        FeatureExtractor/MobilenetV2/Conv/Relu6:0:
            qtype: asymmetric_quantized
            qmethod: layer
            dtype: int8
            min: [0.0]
            max: [6.0]
            scale: [0.023529411764705882]
            zero_point: [-128]
            ori_min: [...]             # optional: the range before calibration clipped it
            ori_max: [...]

In memory dtypes use our names (`numerics`: "i8", "f16", ...); the file uses RKNN's
(`RKNN_DTYPES`). Entries keep their order (graph order) and floats are written with Python's
`repr`, which reads back to the same float.

RKNN-Toolkit2 2.5.0 itself writes `qtype: asym` (research/rknn_peer/RESULTS.md), the user guide
`asymmetric_quantized`: both are read and kept as found; new entries get the guide's name.
Its graph inputs are float32 entries whose scale and zero point lists are empty, hence
"float32" here and empty lists allowed for float dtypes.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from backends.fileio import atomic_write
from compiler.errors import CompilerError
from dialects.npu import numerics as nx

# RKNN dtype name -> ours. float32 appears only on graph I/O entries of quantize_parameters.
RKNN_DTYPES: dict[str, str] = {
    "int8": "i8",
    "int16": "i16",
    "float16": "f16",
    "int4": "i4",
    "float32": "f32",
}
OUR_DTYPES: dict[str, str] = {ours: rknn for rknn, ours in RKNN_DTYPES.items()}
LAYER_DTYPES = ("f16", "i16", "i8", "i4")  # what custom_quantize_layers may ask for

QTYPES = ("asymmetric_quantized", "asym")  # the guide's name, RKNN 2.5.0's name
QMETHODS = ("layer", "channel")
SECTIONS = ("custom_quantize_layers", "quantize_parameters")
LISTS = ("min", "max", "scale", "zero_point")
ORI_LISTS = ("ori_min", "ori_max")
FIELDS = ("qtype", "qmethod", "dtype", *LISTS, *ORI_LISTS)


def _rknn_names(dtypes: tuple[str, ...] | list[str]) -> str:
    return ", ".join(OUR_DTYPES[d] for d in dtypes)


# ---------------------------------------------------------------------- the model


@dataclass(kw_only=True)
class TensorQuantization:
    """One `quantize_parameters` entry. Lists hold one value per channel ("channel") or one
    value ("layer"); float dtypes may leave them empty. Invalid values raise ValueError."""

    qtype: str = "asymmetric_quantized"
    qmethod: str = "layer"
    dtype: str  # ours: "i8", "i16", "i4", "f16", "f32"
    min: list[float]
    max: list[float]
    scale: list[float]
    zero_point: list[int]
    ori_min: list[float] | None = None
    ori_max: list[float] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError (a one-line reason) when the entry is not usable."""
        if self.qtype not in QTYPES:
            raise ValueError(f"qtype {self.qtype!r} is not supported (only {' or '.join(QTYPES)})")
        if self.qmethod not in QMETHODS:
            raise ValueError(f"qmethod {self.qmethod!r} is not {' or '.join(QMETHODS)}")
        if self.dtype not in OUR_DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(OUR_DTYPES)}")
        self._check_lengths()
        self._check_values()

    def _lists(self) -> dict[str, list[Any]]:
        lists = {name: getattr(self, name) for name in (*LISTS, *ORI_LISTS)}
        return {name: values for name, values in lists.items() if values is not None}

    def _check_lengths(self) -> None:
        lists = self._lists()
        if self.dtype not in nx.FLOAT_DTYPES:
            empty = [name for name in LISTS if not lists[name]]
            if empty:
                raise ValueError(
                    f"{', '.join(empty)} empty: an {self.rknn_dtype} tensor needs values"
                )
        # Float entries may leave lists empty (RKNN's graph inputs); the others must agree.
        lengths = {name: len(values) for name, values in lists.items() if values}
        if len(set(lengths.values())) > 1:
            found = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise ValueError(f"the lists disagree in length ({found})")
        if self.qmethod == "layer" and max(lengths.values(), default=1) > 1:
            n = max(lengths.values())
            raise ValueError(f"qmethod layer takes one value per list, found {n} (use channel)")

    def _check_values(self) -> None:
        for name in ("min", "max", *ORI_LISTS):
            for i, value in enumerate(getattr(self, name) or []):
                if not math.isfinite(value):
                    raise ValueError(f"{name}[{i}] = {value!r} is not finite")
        for i, (lo, hi) in enumerate(zip(self.min, self.max, strict=False)):
            if lo > hi:
                raise ValueError(f"min[{i}] = {lo!r} is above max[{i}] = {hi!r}")
        for i, scale in enumerate(self.scale):
            if not (math.isfinite(scale) and scale > 0):
                raise ValueError(f"scale[{i}] = {scale!r} is not a positive finite number")
        if self.dtype in nx.QRANGES:
            qmin, qmax = nx.qrange(self.dtype)
            for i, zp in enumerate(self.zero_point):
                if not qmin <= zp <= qmax:
                    raise ValueError(
                        f"zero_point[{i}] = {zp} is outside {self.rknn_dtype}'s range "
                        f"[{qmin}, {qmax}]"
                    )

    @property
    def rknn_dtype(self) -> str:
        return OUR_DTYPES[self.dtype]

    def to_params(self) -> nx.QuantParams:
        """The `numerics` parameters: per channel on axis 0 (weights' output channels) when
        qmethod is channel and there is more than one value, else per tensor."""
        if self.dtype in nx.FLOAT_DTYPES:
            return nx.QuantParams(self.dtype, np.float64(1.0), np.int64(0))
        if self.qmethod == "channel" and len(self.scale) > 1:
            scale = np.array(self.scale, np.float64)
            return nx.QuantParams(self.dtype, scale, np.array(self.zero_point, np.int64), 0)
        return nx.QuantParams(self.dtype, np.float64(self.scale[0]), np.int64(self.zero_point[0]))

    @classmethod
    def from_params(
        cls,
        params: nx.QuantParams,
        lo: Any,
        hi: Any,
        ori_lo: Any = None,
        ori_hi: Any = None,
        qmethod: str | None = None,
    ) -> TensorQuantization:
        """An entry for `params` with the range [lo, hi] (scalars or one per channel) and the
        range before clipping, if any. qmethod defaults to channel when `params` has an axis."""
        if params.axis not in (None, 0):
            raise ValueError(
                f"the cfg format has no channel axis: axis {params.axis} cannot be kept"
            )
        is_float = params.dtype in nx.FLOAT_DTYPES
        n = 1 if is_float else np.size(params.scale)
        return cls(
            qmethod=qmethod or ("layer" if params.axis is None else "channel"),
            dtype=params.dtype,
            min=_float_list(lo, n),
            max=_float_list(hi, n),
            scale=[] if is_float else _float_list(params.scale, n),
            zero_point=[] if is_float else [int(z) for z in np.ravel(params.zero_point)],
            ori_min=None if ori_lo is None else _float_list(ori_lo, n),
            ori_max=None if ori_hi is None else _float_list(ori_hi, n),
        )


def _float_list(values: Any, n: int) -> list[float]:
    """Plain Python floats (numpy scalars are not YAML-safe), a scalar repeated n times."""
    flat = np.ravel(np.asarray(values, np.float64))
    if flat.size == 1:
        flat = np.repeat(flat, n)
    return [float(v) for v in flat]


@dataclass
class QuantizationCfg:
    """The whole file: per-layer dtype overrides and per-tensor parameters, in graph order."""

    custom_quantize_layers: dict[str, str] = field(default_factory=dict)  # our dtype names
    quantize_parameters: dict[str, TensorQuantization] = field(default_factory=dict)
    # written as a comment after a custom_quantize_layers entry (a proposal's reasons)
    layer_notes: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ValueError naming the tensor when an entry is not usable."""
        for name, dtype in self.custom_quantize_layers.items():
            if not isinstance(name, str):
                raise ValueError(f"custom_quantize_layers: tensor name {name!r} is not a string")
            if dtype not in LAYER_DTYPES:
                valid = ", ".join(LAYER_DTYPES)
                raise ValueError(
                    f"custom_quantize_layers: {name!r}: dtype {dtype!r} is not {valid}"
                )
        for name, entry in self.quantize_parameters.items():
            if not isinstance(name, str):
                raise ValueError(f"quantize_parameters: tensor name {name!r} is not a string")
            try:
                entry.validate()
            except ValueError as e:
                raise ValueError(f"quantize_parameters: {name!r}: {e}") from None


# ---------------------------------------------------------------------- writing


def cfg_to_yaml(cfg: QuantizationCfg) -> str:
    """The file's text: both sections, in that order, entries in insertion order."""
    cfg.validate()
    layers = {n: OUR_DTYPES[d] for n, d in cfg.custom_quantize_layers.items()}
    parameters = {n: _entry_dict(e) for n, e in cfg.quantize_parameters.items()}
    return _annotated(_dump({"custom_quantize_layers": layers}), cfg) + _dump(
        {"quantize_parameters": parameters}
    )


def _dump(data: dict[str, Any]) -> str:
    # SafeDumper writes floats as repr() (exact), quotes names that need it; no width limit
    # so that long tensor names are never folded over lines. Non-ASCII is escaped: written
    # raw, a NEL or LINE SEPARATOR in a tensor name reads back as a line break.
    return yaml.safe_dump(data, indent=4, sort_keys=False, allow_unicode=False, width=2**31 - 1)


def _annotated(section: str, cfg: QuantizationCfg) -> str:
    """`layer_notes` as comments after their entries (one line per entry: scalars, no
    width limit, escaped names)."""
    if not cfg.layer_notes:
        return section
    lines = section.splitlines()
    for index, name in enumerate(cfg.custom_quantize_layers, start=1):
        note = cfg.layer_notes.get(name)
        if note:
            lines[index] += f"  # {' '.join(note.split())}"
    return "\n".join(lines) + "\n"


def _entry_dict(entry: TensorQuantization) -> dict[str, Any]:
    out: dict[str, Any] = {
        "qtype": entry.qtype,
        "qmethod": entry.qmethod,
        "dtype": entry.rknn_dtype,
    }
    for name in (*LISTS, *ORI_LISTS):
        values = getattr(entry, name)
        if values is not None:
            cast = int if name == "zero_point" else float
            out[name] = [cast(v) for v in values]
    return out


def write_cfg(cfg: QuantizationCfg, path: Path | str) -> None:
    """Write `cfg` to `path` atomically (an existing file survives a failed write)."""
    text = cfg_to_yaml(cfg)
    with atomic_write(path, "wb") as f:
        f.write(text.encode("utf-8"))


# ---------------------------------------------------------------------- reading


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """safe_load, except that a repeated key is an error: PyYAML would silently keep the
    last one and drop a tensor the user wrote."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue  # super() reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_cfg(path: Path | str) -> QuantizationCfg:
    """Read and validate a config; any problem is a one-line CompilerError naming the file
    and the tensor."""
    path = Path(path)
    data = _load_yaml(path)
    if data is None:  # an empty file: nothing to override
        data = {}
    if not isinstance(data, dict):
        raise CompilerError(
            f"{path}: not a quantization config: expected a mapping with {' and '.join(SECTIONS)},"
            f" found {type(data).__name__}"
        )
    unknown = [key for key in data if key not in SECTIONS]
    if unknown:
        raise CompilerError(
            f"{path}: unknown top-level key {unknown[0]!r} (valid: {', '.join(SECTIONS)})"
        )
    layers = _section(data, "custom_quantize_layers", path)
    params = _section(data, "quantize_parameters", path)
    return QuantizationCfg(
        {name: _layer_dtype(name, value, path) for name, value in layers.items()},
        {name: _tensor(name, value, path) for name, value in params.items()},
    )


def _load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CompilerError(f"cannot read quantization config {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise CompilerError(f"{path}: not a quantization config: not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as e:
        raise CompilerError(_yaml_error(e, path)) from None


def _yaml_error(e: yaml.YAMLError, path: Path) -> str:
    """PyYAML's messages span lines; ours is `file:line:column: problem`."""
    mark = getattr(e, "problem_mark", None)
    problem = getattr(e, "problem", None) or str(e)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    return f"{where}: not valid YAML: {' '.join(problem.split())}"


def _section(data: dict[str, Any], section: str, path: Path) -> dict[str, Any]:
    value = data.get(section)
    if value is None:  # absent, or `section:` with nothing under it
        return {}
    if not isinstance(value, dict):
        raise CompilerError(f"{path}: {section} must map tensor names to entries, found {value!r}")
    for name in value:
        if not isinstance(name, str):
            raise CompilerError(
                f"{path}: {section}: tensor name {name!r} is not a string; quote it: '{name}'"
            )
    return value


def _layer_dtype(name: str, value: Any, path: Path) -> str:
    ours = RKNN_DTYPES.get(value) if isinstance(value, str) else None
    if ours not in LAYER_DTYPES:
        raise CompilerError(
            f"{path}: custom_quantize_layers: {name!r}: unknown dtype {value!r} "
            f"(valid: {_rknn_names(LAYER_DTYPES)})"
        )
    return ours


def _tensor(name: str, entry: Any, path: Path) -> TensorQuantization:
    where = f"{path}: quantize_parameters: {name!r}"
    if not isinstance(entry, dict):
        raise CompilerError(f"{where}: expected a mapping of {', '.join(FIELDS)}, found {entry!r}")
    try:
        return _tensor_fields(entry)
    except ValueError as e:
        raise CompilerError(f"{where}: {e}") from None


def _tensor_fields(entry: dict[str, Any]) -> TensorQuantization:
    """The entry from its YAML mapping; ValueError says what is wrong."""
    unknown = [key for key in entry if key not in FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r} (valid: {', '.join(FIELDS)})")
    for key in ("qtype", "qmethod", "dtype"):
        if not isinstance(entry.get(key), str):
            raise ValueError(
                f"missing field {key!r}" if key not in entry else f"{key} must be a name"
            )
    dtype = RKNN_DTYPES.get(entry["dtype"])
    if dtype is None:
        raise ValueError(f"unknown dtype {entry['dtype']!r} (valid: {', '.join(RKNN_DTYPES)})")
    if dtype not in nx.FLOAT_DTYPES:
        missing = [key for key in LISTS if key not in entry]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
    lists = {key: _numbers(entry, key) for key in (*LISTS, *ORI_LISTS)}
    return TensorQuantization(qtype=entry["qtype"], qmethod=entry["qmethod"], dtype=dtype, **lists)


def _numbers(entry: dict[str, Any], key: str) -> Any:
    """A list field as floats (zero_point: ints); absent lists are [] (ori_*: None)."""
    if key not in entry:
        return None if key in ORI_LISTS else []
    values = entry[key]
    if values is None:  # `key:` with nothing under it
        values = []
    if not isinstance(values, list):
        raise ValueError(f"{key} must be a list, found {values!r}")
    convert = _integer if key == "zero_point" else _real
    return [convert(key, i, v) for i, v in enumerate(values)]


def _real(key: str, i: int, value: Any) -> float:
    # YAML 1.1 reads `1e-3` (no dot) as a string; accept what float() reads.
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"{key}[{i}] = {value!r} is not a number")


def _integer(key: str, i: int, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"{key}[{i}] = {value!r} is not an integer")
