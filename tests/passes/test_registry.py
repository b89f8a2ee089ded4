"""The pass registry: every name loads its pass, named as registered, with a description."""

from __future__ import annotations

import pytest

from passes.registry import PASSES, all_passes, load_pass


@pytest.mark.parametrize("name", sorted(PASSES))
def test_registered_pass_loads_under_its_name(name: str) -> None:
    cls = load_pass(name)
    assert cls.name == name
    doc = (cls.__doc__ or "").strip()
    # a frozen dataclass without a docstring gets "ClassName(fields...)" as its __doc__
    assert doc and not doc.startswith(f"{cls.__name__}("), f"{name} needs a one-line docstring"
    assert all_passes()[name]() is cls


def test_module_names_follow_pass_names() -> None:
    for name, path in PASSES.items():
        module = path.partition(":")[0]
        assert module == "passes." + name.replace("-", "_"), path
