"""`RKNNLite`: RKNN-Toolkit Lite2's on-board class (research/sdk_inventory.md §1.2) over our
runtime, so a deployment script runs with only its import changed:

    from runtime.lite import RKNNLite          # was: from rknnlite.api import RKNNLite
    rknn_lite = RKNNLite()
    rknn_lite.load_rknn("model.rknn")
    rknn_lite.init_runtime(core_mask=RKNNLite.NPU_CORE_0)
    outputs = rknn_lite.inference(inputs=[img])  # a list of arrays, 4-D ones NHWC
    rknn_lite.release()

Same return conventions: 0 / -1 (None for `inference` and `get_sdk_version`) with one
logged line. `init_runtime` runs on the NPU through the rocket driver when this machine has
one, else on the simulator with a warning (`backend="rocket"` or `"simulator"` forces one).
Imports only `runtime`, `backends` and `dialects`: a board needs no compiler.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from backends.container import Container, read_container
from backends.targets import TARGETS
from runtime.api_support import (
    ApiError,
    ApiRuntime,
    CoreMasks,
    api_call,
    api_logger,
    close_log,
    running,
    sdk_version,
)
from runtime.session import BACKENDS


class RKNNLite(CoreMasks):
    def __init__(self, verbose: bool = False, verbose_file: str | None = None) -> None:
        self.log, self._log_file = api_logger(verbose, verbose_file)
        self.container: Container | None = None
        self.runtime: ApiRuntime | None = None

    @api_call(-1)
    def load_rknn(self, path: str | Path) -> int:
        self._close_runtime()
        self.container = None
        self.container = read_container(path)
        self.log.debug("load_rknn: %s, built for %s", path, self.container.target)
        return 0

    @api_call(-1)
    def init_runtime(self, core_mask: int = CoreMasks.NPU_CORE_AUTO, backend: str = "auto") -> int:
        """`backend` (ours): "auto" (the NPU if present, else the simulator), "rocket" or
        "simulator"."""
        if self.container is None:
            raise ApiError("no model: call load_rknn first")
        if backend not in ("auto", *BACKENDS):
            raise ApiError(f"backend {backend!r}: expected auto, {' or '.join(BACKENDS)}")
        self._close_runtime()
        if backend == "auto":
            self.runtime = ApiRuntime.open_any(self.container, core_mask, self.log)
        else:
            self.runtime = ApiRuntime(self.container, backend, core_mask)
        self.log.debug(
            "init_runtime: %s, core mask %s", self.runtime.driver(), self.runtime.core_mask
        )
        return 0

    @api_call(None)
    def inference(
        self, inputs: Sequence[np.ndarray], data_format: str | Sequence[str | None] | None = None
    ) -> list[np.ndarray]:
        return running(self.runtime).inference(inputs, data_format)

    @api_call(None)
    def get_sdk_version(self) -> str:
        return sdk_version(running(self.runtime).driver())

    @api_call(None)
    def list_support_target_platform(self, rknn_model: str | Path | None = None) -> list[str]:
        """The chip a container was built for, or every chip we know."""
        if rknn_model is None:
            return list(TARGETS)
        return [read_container(rknn_model).target]

    def release(self) -> None:
        self._close_runtime()
        self.container = None
        close_log(self.log, self._log_file)
        self._log_file = None

    def _close_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None
