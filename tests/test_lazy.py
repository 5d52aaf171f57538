"""``miamind._lazy``: package attributes imported on first access."""

import types

import pytest

from miamind._lazy import lazy_attributes


def test_imports_on_first_access_then_caches():
    namespace = {"__name__": "miamind", "__all__": ["Registry", "_atomic"]}
    getattr_, dir_ = lazy_attributes(namespace, {"Registry": "._registry"}, submodules=("_atomic",))
    from miamind._registry import Registry

    assert getattr_("Registry") is Registry and namespace["Registry"] is Registry
    assert isinstance(getattr_("_atomic"), types.ModuleType)
    assert {"Registry", "_atomic"} <= set(dir_())
    with pytest.raises(AttributeError, match="module 'miamind' has no attribute 'nope'"):
        getattr_("nope")
