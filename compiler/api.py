"""`RKNN`: RKNN-Toolkit2's Python class (`rknn.api.RKNN`, research/sdk_inventory.md §1.1)
over this compiler, so an RKNN script runs with only its import changed:

    from compiler.api import RKNN               # was: from rknn.api import RKNN
    rknn = RKNN(verbose=False)
    rknn.config(mean_values=[[123.675, 116.28, 103.53]], std_values=[[58.395, 57.12, 57.375]],
                target_platform="rk3588")
    rknn.load_onnx(model="mobilenetv2.onnx")
    rknn.build(do_quantization=True, dataset="./dataset.txt")
    rknn.export_rknn("mobilenetv2.rknn")
    rknn.init_runtime()                         # target=None: the simulator
    outputs = rknn.inference(inputs=[img])      # a list of float32 arrays
    rknn.eval_perf(); rknn.eval_memory()        # the cycle model's estimates, no board needed
    rknn.release()

Same names, defaults and return conventions: 0 / -1 (None where RKNN returns data) with one
logged line (`E build: ...`), never a traceback. This class only maps RKNN's names to ours:
`compiler.rknn_api.options` (config), `.loading` (load_onnx), `compiler.analysis` (build
keeping the models accuracy analysis compares), `compiler.quantization.hybrid`,
`runtime.api_support` (the runtime half, shared with `runtime.lite.RKNNLite`).
`init_runtime(target='rk3588')` runs on the NPU through the rocket driver.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backends.container import Container, container_bytes, read_container, write_container
from backends.targets import get_target
from compiler.analysis import accuracy_analysis, build_for_analysis, float_optimized
from compiler.build import BuildResult, build_model
from compiler.ir_model import IRModel
from compiler.quantization.hybrid import hybrid_step1, hybrid_step2
from compiler.quantization.quantize import QuantizeOptions, quantize_model
from compiler.rknn_api.loading import load_onnx_model
from compiler.rknn_api.options import check_config, quantize_options
from compiler.rknn_api.samples import read_sample
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
from runtime.hardware.device import DEVICE_PATTERN
from runtime.perf import memory_profile, perf_report


@dataclass
class BuiltModel:
    """What `build` made, as accuracy analysis compares it."""

    float_model: IRModel  # float-optimized, the golden
    build: BuildResult
    quantized: IRModel  # the quantized IR before the backend passes
    options: QuantizeOptions


class RKNN(CoreMasks):
    def __init__(self, verbose: bool = False, verbose_file: str | None = None) -> None:
        self.log, self._log_file = api_logger(verbose, verbose_file)
        self.verbose = verbose
        self._config: dict[str, Any] = {}
        self._model: IRModel | None = None  # loaded, never built in place
        self._model_path: Path | None = None
        self._built: BuiltModel | None = None
        self._container: Container | None = None
        self._runtime: ApiRuntime | None = None

    # ------------------------------------------------------------------ conversion
    @api_call(-1)
    def config(self, **options: Any) -> int:
        """RKNN's config() options by their names (`compiler.rknn_api.options.CONFIG`:
        mean_values, std_values, quant_img_RGB2BGR, quantized_dtype, quantized_algorithm,
        quantized_method, float_dtype, optimization_level, target_platform, custom_string,
        op_target, model_pruning, ...); each call replaces the previous one's, as RKNN."""
        for note in check_config(options):
            self.log.warning("config: %s", note)
        self._config = dict(options)
        if options.get("target_platform") is None:
            self.log.info("config: target_platform not set: building for %s", get_target(None).name)
        return 0

    @api_call(-1)
    def load_onnx(
        self,
        model: str | Path,
        inputs: Sequence[str] | None = None,
        input_size_list: Sequence[Sequence[int]] | None = None,
        input_initial_val: Sequence[np.ndarray | None] | None = None,
        outputs: Sequence[str] | None = None,
    ) -> int:
        self._forget_model()
        self._model = load_onnx_model(model, inputs, input_size_list, input_initial_val, outputs)
        self._model_path = Path(model)
        self.log.info(
            "load_onnx: %s: %d inputs, %d outputs",
            model,
            len(self._model.inputs),
            len(self._model.outputs),
        )
        return 0

    @api_call(-1)
    def build(
        self,
        do_quantization: bool = True,
        dataset: str | Path | None = None,
        rknn_batch_size: int | None = None,
        auto_hybrid: bool = False,
    ) -> int:
        model = self._require_model()
        if rknn_batch_size not in (None, 1):
            raise ApiError(
                f"rknn_batch_size={rknn_batch_size}: batches over 1 are not supported yet"
            )
        if auto_hybrid:
            raise ApiError("auto_hybrid is not supported yet (use hybrid_quantization_step1/2)")
        options = quantize_options(self._config, len(model.inputs), do_quantization, self.verbose)
        # build_for_analysis: build_model's stages, keeping the float and quantized models
        self._built = BuiltModel(*build_for_analysis(model, dataset, options), options)
        self._built_container(self._built.build)
        return 0

    @api_call(-1)
    def export_rknn(self, export_path: str | Path, **_ignored: Any) -> int:
        write_container(self._require_container(), export_path)
        self.log.info("export_rknn: wrote %s", export_path)
        return 0

    @api_call(-1)
    def load_rknn(self, path: str | Path) -> int:
        self._forget_model()
        self._container = read_container(path)
        self.log.info("load_rknn: %s, built for %s", path, self._container.target)
        return 0

    # ------------------------------------------------------------------ running
    @api_call(-1)
    def init_runtime(
        self,
        target: str | None = None,
        device_id: str | None = None,
        perf_debug: bool = False,
        eval_mem: bool = False,
        async_mode: bool = False,
        core_mask: int = CoreMasks.NPU_CORE_AUTO,
        fallback_prior_device: str = "cpu",
    ) -> int:
        """target None: the simulator; a chip name: its NPU through the rocket driver on
        this machine (no adb: device_id is not used). perf_debug and eval_mem are not
        needed: eval_perf / eval_memory estimate from the container."""
        container = self._require_container()
        if fallback_prior_device != "cpu":
            raise ApiError(
                f"fallback_prior_device {fallback_prior_device!r}: only 'cpu' (no GPU runtime)"
            )
        if async_mode:
            self.log.warning("init_runtime: async_mode is not supported: runs synchronously")
        if device_id is not None:
            self.log.info("init_runtime: device_id ignored: the NPU is this machine's")
        backend = "simulator" if target is None else self._device_backend(target, container)
        self._close_runtime()
        self._runtime = ApiRuntime(container, backend, core_mask)
        self.log.info("init_runtime: %s", self._runtime.driver())
        return 0

    @api_call(None)
    def inference(
        self,
        inputs: Sequence[np.ndarray],
        data_format: str | Sequence[str | None] | None = None,
        inputs_pass_through: Sequence[int] | None = None,
        get_frame_id: bool = False,
    ) -> list[np.ndarray]:
        runtime = running(self._runtime)
        if inputs_pass_through is not None and any(inputs_pass_through):
            raise ApiError("inputs_pass_through is not supported yet")
        if get_frame_id:
            raise ApiError("get_frame_id is not supported")
        return runtime.inference(inputs, data_format)

    @api_call(None)
    def eval_perf(self, is_print: bool = True, fix_freq: bool = True) -> str:
        """The cycle model's per-op estimate (runtime.perf), RKNN's table; no board needed."""
        mask = self._runtime.core_mask if self._runtime else "auto"
        report = perf_report(self._require_container(), mask)
        self.log.info("eval_perf: an estimate of the cycle model, not a measurement")
        text = report.text()
        if is_print:
            print(text)
        return text

    @api_call(None)
    def eval_memory(self, is_print: bool = True) -> dict[str, int]:
        container = self._require_container()
        profile = memory_profile(container, len(container_bytes(container)))
        if is_print:
            print(profile.text())
        return profile.as_dict()

    @api_call(None)
    def get_sdk_version(self) -> str:
        return sdk_version(running(self._runtime).driver())

    @api_call(None)
    def list_devices(self) -> tuple[list[str], list[str]]:
        """(this machine's NPU device nodes, []): no adb or ntb devices."""
        return sorted(glob.glob(DEVICE_PATTERN)), []

    # ------------------------------------------------------------------ analysis
    @api_call(-1)
    def accuracy_analysis(
        self,
        inputs: Sequence[str | Path],
        output_dir: str = "./snapshot",
        target: str | None = None,
        device_id: str | None = None,
    ) -> int:
        built = self._require_built("accuracy_analysis")
        if target is not None:
            raise ApiError(
                "per-layer results from a device (target=...) are not supported "
                "yet: target=None compares on the simulator"
            )
        sample = read_sample(inputs, built.float_model.inputs, built.options.preprocess)
        report = accuracy_analysis(
            built.float_model, built.build, built.quantized, [sample], output_dir
        )
        for row in report.outputs:
            if (mean := row.entire_mean) is not None:
                self.log.info(
                    "accuracy_analysis: output %s: cosine %.5f, euclidean %.5f",
                    row.name,
                    mean.cos,
                    mean.euc,
                )
        self.log.info("accuracy_analysis: wrote %s", ", ".join(map(str, report.paths.values())))
        return 0

    @api_call(-1)
    def hybrid_quantization_step1(
        self,
        dataset: str | Path | None = "dataset.txt",
        rknn_batch_size: int | None = None,
        proposal: bool = False,
        proposal_dataset_size: int = 1,
        custom_hybrid: Sequence[Sequence[str]] | None = None,
    ) -> int:
        """Writes `<model name>.model`, `.data` and `.quantization.cfg` in the current
        directory, as RKNN; `proposal`: the cfg's custom_quantize_layers already lists the
        layers to compute in a wider dtype (int16 or float16), each with the cosine reached."""
        model, path = self._require_model(), self._model_path
        if rknn_batch_size not in (None, 1):
            raise ApiError(
                f"rknn_batch_size={rknn_batch_size}: batches over 1 are not supported yet"
            )
        if custom_hybrid is not None:
            raise ApiError(
                "custom_hybrid is not supported yet: list the tensors in the cfg's "
                "custom_quantize_layers"
            )
        if dataset is None:
            raise ApiError("hybrid quantization needs a calibration dataset")
        options = quantize_options(self._config, len(model.inputs), True, self.verbose)
        assert path is not None
        files = hybrid_step1(
            model.clone(),
            dataset,
            options,
            Path.cwd() / path.stem,
            proposal,
            proposal_dataset_size,
            source=str(path),
        )
        self.log.info(
            "hybrid_quantization_step1: wrote %s, %s, %s", files.model, files.data, files.cfg
        )
        return 0

    @api_call(-1)
    def hybrid_quantization_step2(
        self, model_input: str | Path, data_input: str | Path, model_quantization_cfg: str | Path
    ) -> int:
        """Builds from step 1's files with the edited cfg (no dataset read again); then
        export_rknn / init_runtime as after build."""
        model, options = hybrid_step2(model_input, data_input, model_quantization_cfg)
        options.progress = self.verbose
        self._forget_model()
        # the cfg gives every parameter: no statistics to measure, so quantizing a copy for
        # accuracy analysis costs little and gives what the build quantizes
        float_model, quantized = float_optimized(model, options), model.clone()
        quantize_model(quantized, None, options, statistics={})
        build = build_model(model, None, options, statistics={})
        self._built = BuiltModel(float_model, build, quantized, options)
        self._built_container(build)
        return 0

    # ------------------------------------------------------------------ not supported
    @api_call(-1)
    def load_pytorch(self, model: str, input_size_list: Any = None, **_: Any) -> int:
        raise ApiError(_ONNX_ONLY)

    @api_call(-1)
    def load_tensorflow(self, tf_pb: str, *_: Any, **__: Any) -> int:
        raise ApiError(_ONNX_ONLY)

    @api_call(-1)
    def load_tflite(self, model: str, *_: Any, **__: Any) -> int:
        raise ApiError(_ONNX_ONLY)

    @api_call(-1)
    def load_caffe(self, model: str, *_: Any, **__: Any) -> int:
        raise ApiError(_ONNX_ONLY)

    @api_call(-1)
    def load_darknet(self, model: str, *_: Any, **__: Any) -> int:
        raise ApiError(_ONNX_ONLY)

    @api_call(-1)
    def export_encrypted_rknn_model(self, *_: Any, **__: Any) -> int:
        raise ApiError("model encryption is not supported")

    @api_call(-1)
    def reg_custom_op(self, *_: Any, **__: Any) -> int:
        raise ApiError("custom ops are not supported yet")

    @api_call(-1)
    def codegen(self, *_: Any, **__: Any) -> int:
        raise ApiError("C++ demo generation is not supported")

    def release(self) -> None:
        self._forget_model()
        close_log(self.log, self._log_file)
        self._log_file = None

    # ------------------------------------------------------------------ internals
    def _require_model(self) -> IRModel:
        if self._model is None:
            raise ApiError("no model: call load_onnx first")
        return self._model

    def _require_built(self, what: str) -> BuiltModel:
        if self._built is None:
            raise ApiError(
                f"{what} needs a model built in this session (build or "
                "hybrid_quantization_step2; not after load_rknn, as RKNN)"
            )
        return self._built

    def _require_container(self) -> Container:
        if self._container is None:
            raise ApiError("no model: call build or load_rknn first")
        return self._container

    def _device_backend(self, target: str, container: Container) -> str:
        wanted, built_for = get_target(target).name, get_target(container.target).name
        if wanted != built_for:
            raise ApiError(f"target {target!r}: the model was built for {built_for}")
        return "rocket"

    def _close_runtime(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
            self._runtime = None

    def _forget_model(self) -> None:
        self._close_runtime()
        self._model = self._built = self._container = None
        self._model_path = None

    def _built_container(self, result: BuildResult) -> None:
        self._close_runtime()
        self._container = result.container
        if self._config.get("custom_string") is not None:
            self._container.metadata["custom_string"] = self._config["custom_string"]
        self._log_build(result)

    def _log_build(self, result: BuildResult) -> None:
        for note in result.notes:
            self.log.debug("build: %s", note)
        summary = result.summary()
        stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in result.stages)
        self.log.info(
            "build: %d ops on the NPU, %d on the CPU, %d NPU tasks; weights %.1f KiB, "
            "internal %.1f KiB (%s)",
            summary["npu_ops"],
            summary["cpu_ops"],
            summary["tasks"],
            summary["weight_bytes"] / 1024,
            summary["internal_bytes"] / 1024,
            stages,
        )
        for line in summary["not_generated"]:
            self.log.warning("build: on the CPU, no code generation yet: %s", line)


_ONNX_ONLY = "only ONNX models are supported (export the model to ONNX, then load_onnx)"
