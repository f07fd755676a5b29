"""Session fixtures shared by the TVM-backed tests (the hub server lives in tests/conftest.py).

The tuning database is made once per test session by really tuning two tiny workloads
with MetaSchedule on this CPU, failed candidates included (see tests/data/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "tests" / "data"))


@pytest.fixture(scope="session")
def tuned_db(tmp_path_factory) -> Path:
    """A real MetaSchedule JSON database: a matmul and an add+relu, some builds failed."""
    from make_tuning_db import tune_small_db

    # 24, not 16: a quarter of builds fail on purpose, and at 16 a run of bad draws left the
    # matmul under the 8 successful candidates a ranking needs (5 tests failed that way)
    return tune_small_db(tmp_path_factory.mktemp("tuned-db"), trials=24)


@pytest.fixture(scope="session")
def tuned_workloads(tuned_db) -> list[list]:
    """``tuned_db``'s tuning records grouped by workload, most records first (the matmul)."""
    import tvm_ffi
    from tvm.s_tir import meta_schedule as ms

    by_workload: dict[int, list] = {}
    for record in ms.database.JSONDatabase(work_dir=str(tuned_db)).get_all_tuning_records():
        by_workload.setdefault(int(tvm_ffi.structural_hash(record.workload.mod)), []).append(record)
    return sorted(by_workload.values(), key=len, reverse=True)


@pytest.fixture(scope="session")
def imported_dataset(tuned_db, tmp_path_factory) -> Path:
    """``tuned_db`` imported into a tunezoo dataset directory."""
    from tunezoo.convert import import_database

    out = tmp_path_factory.mktemp("imported") / "llvm-znver4"
    import_database(tuned_db, out, target_key="llvm-znver4")
    return out
