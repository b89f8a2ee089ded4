"""What the RKNN-compatible Python classes share (`runtime.lite.RKNNLite` and
`compiler.api.RKNN`): RKNN's calling conventions on top of `runtime.session.Session`.

- Logging: the logger `rknpu.api`, lines as RKNN prints them (`E init_runtime: ...`), DEBUG
  when `verbose`, also written to `verbose_file`.
- `api_call(failure)`: a public method never raises; it logs one line naming itself and
  returns RKNN's failure value (-1, or None where RKNN returns data).
- The core-mask constants and their names in `runtime.perf`.
- `ApiRuntime`: a container loaded into a `Session` on the simulator or the NPU, fed as
  RKNN's `inference` is (a list of arrays in input order, 4-D ones NHWC by default), giving
  a list of arrays in output order.

Lives in `runtime` (not `compiler`) so that `RKNNLite` deploys with this package alone.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from backends.container import Container
from backends.targets import get_target
from backends.targets.target import (
    NPU_CORE_0,
    NPU_CORE_0_1,
    NPU_CORE_0_1_2,
    NPU_CORE_1,
    NPU_CORE_2,
    NPU_CORE_ALL,
    NPU_CORE_AUTO,
)
from dialects.errors import CompilerError
from runtime.hardware import NoNpuDeviceError, RocketError
from runtime.perf import PerfError
from runtime.perf.report import CORE_MASKS, mask_cores
from runtime.session import Session, SessionError

LOGGER_NAME = "rknpu.api"
CORE_MASK_NAMES = {value: name for name, value in CORE_MASKS.items()}


class CoreMasks:
    """RKNN's core_mask constants as class attributes (`RKNN.NPU_CORE_0`,
    `RKNNLite.NPU_CORE_0_1_2`, ...): both classes inherit them from here."""

    NPU_CORE_AUTO = NPU_CORE_AUTO
    NPU_CORE_0 = NPU_CORE_0
    NPU_CORE_1 = NPU_CORE_1
    NPU_CORE_2 = NPU_CORE_2
    NPU_CORE_0_1 = NPU_CORE_0_1
    NPU_CORE_0_1_2 = NPU_CORE_0_1_2
    NPU_CORE_ALL = NPU_CORE_ALL


CORE_MASK_CONSTANTS = {k: v for k, v in vars(CoreMasks).items() if k.startswith("NPU_CORE")}


class ApiError(Exception):
    """A call RKNN would refuse (wrong order, unsupported option): one line."""


# what a public method reports as its one line; anything else is a bug, logged as one
API_ERRORS = (ApiError, CompilerError, SessionError, RocketError, PerfError, OSError)


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a redirected one, a test's capture),
    as `logging.lastResort` does, not to the stream of when the logger was set up."""

    @property
    def stream(self) -> Any:  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def api_logger(
    verbose: bool, verbose_file: str | None
) -> tuple[logging.Logger, logging.Handler | None]:
    """The `rknpu.api` logger set up as RKNN's constructor does, and the file handler
    writing `verbose_file` (RKNN writes it only when `verbose`), for `close_log`."""
    logger = logging.getLogger(LOGGER_NAME)
    # our own lines once, on stderr, even when the application configured the root logger
    logger.propagate = False
    if not any(isinstance(h, _CurrentStderr) for h in logger.handlers):
        console = _CurrentStderr()
        console.setFormatter(logging.Formatter("%(levelname).1s %(message)s"))
        logger.addHandler(console)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not (verbose and verbose_file):
        return logger, None
    handler = logging.FileHandler(verbose_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def close_log(logger: logging.Logger, handler: logging.Handler | None) -> None:
    if handler is not None:
        logger.removeHandler(handler)
        handler.close()


Method = TypeVar("Method", bound=Callable[..., Any])


def api_call(failure: Any) -> Callable[[Method], Method]:
    """Wrap a public method: errors become one logged line (`E method: reason`) and the
    return value `failure`, as RKNN's methods return -1 (or None) with a logged reason."""

    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except API_ERRORS as exc:
                self.log.error("%s: %s", method.__name__, one_line(exc))
            except Exception as exc:  # a bug of ours: still one line, the trace on DEBUG
                self.log.error(
                    "%s: internal error: %s: %s (verbose=True shows where)",
                    method.__name__,
                    type(exc).__name__,
                    one_line(exc),
                )
                self.log.debug("traceback", exc_info=True)
            return failure

        return call  # type: ignore[return-value]

    return wrap


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
    return text or type(exc).__name__


def core_mask_name(core_mask: int, target: str) -> str:
    """RKNN's `core_mask` constant as `runtime.perf`'s name, checked against the chip."""
    name = CORE_MASK_NAMES.get(core_mask) if isinstance(core_mask, int) else None
    if name is None:
        known = ", ".join(f"{k}={v:#x}" for k, v in CORE_MASK_CONSTANTS.items())
        raise ApiError(f"core_mask {core_mask!r}: expected one of {known}")
    mask_cores(get_target(target), name)  # PerfError naming the masks the chip has
    return name


def sdk_version(driver: str) -> str:
    """`get_sdk_version()`'s text, in RKNN's shape (`RKNN VERSION:\\n API: ...\\n DRV: ...`)."""
    try:
        version = importlib.metadata.version("rknpu-compiler")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"RKNN VERSION:\n API: rknpu-compiler {version}\n DRV: {driver}"


def running(runtime: ApiRuntime | None) -> ApiRuntime:
    """`runtime`, or RKNN's error when init_runtime has not run."""
    if runtime is None:
        raise ApiError("the runtime is not initialized: call init_runtime first")
    return runtime


class ApiRuntime:
    """A container in a `Session`, run the way RKNN's `inference` is called."""

    def __init__(self, container: Container, backend: str, core_mask: int) -> None:
        self.core_mask = core_mask_name(core_mask, container.target)
        self.session = Session(container, backend)
        self.backend = backend
        self.specs = list(self.session.metadata["inputs"])

    @classmethod
    def open_any(cls, container: Container, core_mask: int, log: logging.Logger) -> ApiRuntime:
        """On the NPU when this machine has one, else on the simulator (with a warning)."""
        try:
            return cls(container, "rocket", core_mask)
        except NoNpuDeviceError as exc:
            log.warning("init_runtime: %s; running on the simulator", one_line(exc))
            return cls(container, "simulator", core_mask)

    def driver(self) -> str:
        device = self.session.device
        return "simulator" if device is None else f"rocket ({device.path})"

    def inference(
        self,
        inputs: Sequence[np.ndarray] | np.ndarray,
        data_format: str | Sequence[str | None] | None,
    ) -> list[np.ndarray]:
        arrays = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        if len(arrays) != len(self.specs):
            names = ", ".join(repr(s["name"]) for s in self.specs)
            raise ApiError(
                f"{len(arrays)} inputs given; the model takes {len(self.specs)} "
                f"({names}), as a list in that order"
            )
        arrays = [np.asarray(a) for a in arrays]
        formats = input_formats(self.specs, arrays, data_format)
        feed = {spec["name"]: array for spec, array in zip(self.specs, arrays, strict=True)}
        return list(self.session.run(feed, formats).values())

    def close(self) -> None:
        self.session.close()


def input_formats(
    specs: Sequence[dict],
    arrays: Sequence[np.ndarray],
    data_format: str | Sequence[str | None] | None,
) -> list[str | None]:
    """Per input, the layout `Session.run` takes: `data_format` as given (one for all, or
    one per input, as RKNN), else RKNN's default: NHWC for a 4-D input, except an array
    already in the model's own shape which is not also its NHWC shape (taken as it is,
    rather than refused, e.g. an ONNX model whose input is NHWC already)."""
    if isinstance(data_format, str):
        return [data_format] * len(specs)
    if data_format is not None:
        formats = list(data_format)
        if len(formats) != len(specs):
            raise ApiError(
                f"data_format gives {len(formats)} formats for {len(specs)} "
                "inputs (give one per input)"
            )
        return formats
    return [_default_format(tuple(s["shape"]), a.shape) for s, a in zip(specs, arrays, strict=True)]


def _default_format(shape: tuple[int, ...], given: tuple[int, ...]) -> str | None:
    if len(shape) != 4:
        return None
    n, c, h, w = shape
    if given == shape and (n, h, w, c) != shape:
        return None
    return "nhwc"
