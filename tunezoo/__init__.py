"""tunezoo: tuning-record datasets and pretrained cost models for TVM MetaSchedule.

The public API is a few functions, re-exported here lazily: importing ``tunezoo`` costs
nothing, and TVM, torch or the Hub client load only when a function that needs them is
first used.

    import tunezoo
    cost_model = tunezoo.load_predictor("llvm-znver4")   # pass as cost_model= to tune_tir
    records = tunezoo.read_records("data/llvm-znver4")    # a pyarrow Table
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (one table, no registration by import side effect)
_EXPORTS = {
    "load_predictor": "tunezoo.loading",
    "list_predictors": "tunezoo.loading",
    "list_targets": "tunezoo.targets",
    "detect_target": "tunezoo.targets",
    "get_target": "tunezoo.targets",
    "read_records": "tunezoo.records",
    "read_workloads": "tunezoo.records",
    "validate": "tunezoo.records",
    "import_database": "tunezoo.convert",
    "export_database": "tunezoo.convert",
    "Predictor": "tunezoo.predictor",
    "evaluate_ranking": "tunezoo.evaluate",
    "download_artifact": "tunezoo.hub",
    "contribute": "tunezoo.hub",
    "tune": "tunezoo.tuning",
    "TuneResult": "tunezoo.tuning",
    "TunezooCostModel": "tunezoo.cost_model",
    "load_init": "tunezoo.meta",
    "adapt": "tunezoo.meta",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tunezoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
