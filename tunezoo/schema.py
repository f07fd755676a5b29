"""The tunezoo record schema, version 1, as pyarrow schemas.

Two tables make a dataset: *workloads* (one row per distinct TIR workload) and *records*
(one row per measured candidate schedule). Records are the raw source of truth: the
workload, the schedule trace and every measured run time. Features are derived elsewhere
and never stored here.

The schema version is written into every Parquet file's key-value metadata under
``tunezoo.schema_version`` (and the table kind under ``tunezoo.table``) so that a reader
can refuse a file it does not understand instead of misreading it.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1"
META_VERSION_KEY = b"tunezoo.schema_version"
META_TABLE_KEY = b"tunezoo.table"

# MetaSchedule writes this run time for a candidate that failed to build or run
# (AddToDatabase's sentinel); we keep such records and mark them with an error kind.
FAILED_RUN_SECS = 1e10

ERROR_KINDS = ("build", "run", "timeout", "failed-in-database")
SAMPLING_METHODS = ("random", "evolutionary", "tuning", "imported", "contributed")

WORKLOAD_SCHEMA = pa.schema(
    [
        pa.field("workload_id", pa.string(), nullable=False),  # structural hash, decimal string
        pa.field("name", pa.string(), nullable=False),  # readable: task name or PrimFunc symbol
        pa.field("mod_json", pa.string(), nullable=False),  # tvm.ir.save_json of the IRModule
        pa.field("tvmscript", pa.string(), nullable=True),  # human-readable, not round-tripped
        pa.field("flops", pa.float64(), nullable=True),
        pa.field(
            "models",
            pa.list_(
                pa.struct(
                    [
                        pa.field("model", pa.string(), nullable=False),
                        pa.field("weight", pa.int32(), nullable=False),
                    ]
                )
            ),
            nullable=False,
        ),
        # the hash the workload had in the database it came from, when it differs
        # (e.g. imported from an older TVM); empty when identical
        pa.field("source_hash", pa.string(), nullable=True),
        pa.field("tvm_version", pa.string(), nullable=False),
    ],
    metadata={META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: b"workloads"},
)

RECORD_SCHEMA = pa.schema(
    [
        pa.field("record_id", pa.string(), nullable=False),  # sha256(workload, trace, target)
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("target_key", pa.string(), nullable=False),  # e.g. llvm-znver4, cuda-a100
        pa.field("target", pa.string(), nullable=False),  # full TVM target, JSON dict
        pa.field("trace", pa.string(), nullable=False),  # MetaSchedule trace JSON
        pa.field("args_info", pa.string(), nullable=False),  # MetaSchedule args_info JSON
        pa.field("run_secs", pa.list_(pa.float64()), nullable=False),  # every repeat
        pa.field("latency_s", pa.float64(), nullable=True),  # mean of run_secs; null if failed
        pa.field("error_kind", pa.string(), nullable=True),  # one of ERROR_KINDS or null
        pa.field("error_msg", pa.string(), nullable=True),
        pa.field("hw_cpu_model", pa.string(), nullable=True),
        pa.field("hw_gpu_model", pa.string(), nullable=True),
        pa.field("hw_num_cores", pa.int32(), nullable=True),
        pa.field("hw_driver", pa.string(), nullable=True),
        pa.field("tvm_version", pa.string(), nullable=False),
        pa.field("tunezoo_version", pa.string(), nullable=False),
        pa.field("measure_settings", pa.string(), nullable=False),  # builder/runner JSON
        pa.field("sampling", pa.string(), nullable=False),  # one of SAMPLING_METHODS
        pa.field("source", pa.string(), nullable=False),  # what produced it (URI-like)
        pa.field("contributor", pa.string(), nullable=True),
        pa.field("license", pa.string(), nullable=True),
        pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ],
    metadata={META_VERSION_KEY: SCHEMA_VERSION.encode(), META_TABLE_KEY: b"records"},
)

SCHEMAS = {"workloads": WORKLOAD_SCHEMA, "records": RECORD_SCHEMA}
