"""scikit-build-core dynamic-metadata provider: pin the wheel to the torch it is built against.

The compiled module links against one torch's libraries (c10, torch_cpu, torch_cuda) and is
not ABI-compatible with another release. Declaring `torch==<the version in the build
environment>` as a dependency means pip can never leave the wheel beside a different torch.
"""
from __future__ import annotations

from typing import Any, Mapping


def _torch_requirement() -> str:
    import torch  # the torch of the build environment (isolated or not)

    public = torch.__version__.split("+", 1)[0]
    return f"torch=={public}"


def dynamic_metadata(settings: Mapping[str, Any], project: Mapping[str, Any]) -> dict[str, Any]:
    del project
    if set(settings) - {"field"}:
        raise RuntimeError(f"torch_pin takes no settings but 'field', got {sorted(settings)}")
    if settings.get("field", "dependencies") != "dependencies":
        raise RuntimeError("torch_pin only provides 'dependencies'")
    return {"dependencies": [_torch_requirement()]}
