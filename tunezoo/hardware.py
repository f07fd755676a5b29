"""A fingerprint of the machine a record was measured on.

Run times only mean something next to the hardware that produced them; the fingerprint is
stored in every record so that data from different machines that share a target key can
be told apart (and filtered) later.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Hardware:
    cpu_model: str | None
    gpu_model: str | None
    num_cores: int | None
    driver: str | None

    def columns(self) -> dict:
        """The ``hw_*`` record columns."""
        return {f"hw_{k}": v for k, v in asdict(self).items()}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _nvidia_smi(query: str) -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def detect_hardware(num_cores: int | None = None, gpu: bool = False) -> Hardware:
    """This machine's fingerprint. ``num_cores``: cores the measurement used."""
    gpu_model = _nvidia_smi("name") if gpu else None
    driver = _nvidia_smi("driver_version") if gpu else None
    if driver is None:
        driver = f"linux-{platform.release()}"
    return Hardware(
        cpu_model=_cpu_model(),
        gpu_model=gpu_model,
        num_cores=num_cores if num_cores is not None else os.cpu_count(),
        driver=driver,
    )
