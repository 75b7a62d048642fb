"""Load the compiled module `_C`, refusing one built against a different torch.

`_build_config.py` is written by CMake next to `_C`; it is read before `_C` is loaded, so a
torch mismatch gives a message that says what to do instead of an undefined-symbol error.
"""

from __future__ import annotations

import importlib
import os

import torch


def _load():
    try:
        config = importlib.import_module("seqrec_ext._build_config")
    except ModuleNotFoundError as exc:
        here = os.path.dirname(os.path.abspath(__file__))
        if os.path.exists(os.path.join(here, os.pardir, "pyproject.toml")):
            hint = (
                f"this is the source tree ({os.path.dirname(here)}), which Python found first "
                "(it is the current directory, or on PYTHONPATH); it holds no compiled "
                "module. Run from another directory, or use `pytest` rather than "
                "`python -m pytest` in the source tree"
            )
        else:
            hint = "the compiled module is missing"
        raise ImportError(
            f"seqrec_ext cannot load its compiled ops: {hint}. To build and install: "
            "`pip install --no-build-isolation .` (see README.md)"
        ) from exc
    if config.TORCH_VERSION != torch.__version__:
        raise ImportError(
            f"seqrec_ext was built against torch {config.TORCH_VERSION} but torch "
            f"{torch.__version__} is installed; the compiled ops only load into the torch they "
            "were built with. Reinstall seqrec_ext with this torch "
            "(`pip install --no-build-isolation --force-reinstall --no-deps .`) or install "
            f"torch {config.TORCH_VERSION}."
        )
    return importlib.import_module("seqrec_ext._C"), config


_C, build_config = _load()
