"""Shared fixtures: ONNX's backend node tests, generated once per cache."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.zoo import ZOO


def node_test_tool():  # type: ignore[no-untyped-def]
    """The zoo's `onnx_node_tests.py` as a module (generator and case loader)."""
    path = ZOO / "tools" / "onnx_node_tests.py"
    if not path.exists():
        pytest.skip(f"{path} not found (the shared zoo is absent)")
    spec = importlib.util.spec_from_file_location("onnx_node_tests", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def onnx_node_tests(request: pytest.FixtureRequest) -> Path:
    """Folder with `node/`, `node_op13/`, `node_op17/` (ONNX's backend node tests), made by
    the zoo's generator on first use and cached by pytest (about 30 s)."""
    import onnx

    tool = node_test_tool()
    cache = request.config.cache
    root = (
        cache.mkdir(f"onnx_node_tests_{onnx.__version__}")
        if cache is not None
        else Path(request.config.rootpath) / ".cache" / "onnx_node_tests"
    )
    done = root / "complete.json"
    if not done.exists():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tool.generate(str(root))
            tool.generate_downgraded(str(root), 17)
        done.write_text(json.dumps({"onnx": onnx.__version__}))
    return root
