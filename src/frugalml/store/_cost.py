"""What a run itself cost: CPU time, energy and CO2e of the command, recorded with every run.

This is the cost of *experimentation* (`frugal ui` sums it over the store), not of the model: a
profile's energy per item is measured separately and precisely. Here one reading is taken when the
run starts and one when it ends:

- CPU time: this process's user + system seconds, plus those of children it waited for. Ray
  workers of a distributed search are other processes and are not included (listed in the note).
- energy: RAPL package counters where readable (other processes included), else the CPU time x
  ``$FRUGAL_CPU_WATTS_PER_CORE`` (default 4 W) estimate; plus the GPU board's NVML energy counter
  when a GPU is present. The source says which.
- CO2e: energy x the carbon intensity of ``$FRUGAL_REGION``'s grid (ISO 3166-1 alpha-3, from
  codecarbon's tables), or codecarbon's world average when it is not set.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psutil

__all__ = ["RunCostMeter"]

log = logging.getLogger(__name__)


def _cpu_seconds() -> float:
    # time.process_time() reads CLOCK_PROCESS_CPUTIME_ID (ns resolution). psutil's cpu_times() comes
    # from /proc in clock ticks (10 ms), so a short run could read as 0 s of CPU and 0 J.
    own = time.process_time()
    try:
        import resource  # POSIX only; children's user + system time at microsecond resolution

        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own + kids.ru_utime + kids.ru_stime
    except ImportError:
        times = psutil.Process().cpu_times()
        return own + float(getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0))


class RunCostMeter:
    """Reads the counters at construction; :meth:`measurements` turns the difference into store rows."""

    def __init__(self) -> None:
        from frugalml.measure.energy import CpuTimeEstimate, NvmlMeter, RaplMeter

        self._cpu0 = _cpu_seconds()
        self._cpu: Any = None
        try:
            self._cpu = RaplMeter()
        except (OSError, ValueError):
            self._watts = CpuTimeEstimate().watts_per_core
        self._cpu_j0 = self._cpu.read_j() if self._cpu is not None else 0.0
        self._gpu: Any = None
        try:
            import torch

            if torch.cuda.is_available():
                self._gpu = NvmlMeter(0)
                self._gpu_j0 = self._gpu.read_j()
        except Exception as exc:  # noqa: BLE001 - NVML raises its own error classes, or is absent
            log.debug("no GPU energy counter for run accounting: %s", exc)
            self._gpu = None

    def measurements(self) -> list[Any]:
        from frugalml.measure.energy import default_carbon_intensity
        from frugalml.store._store import Measurement

        cpu_s = max(0.0, _cpu_seconds() - self._cpu0)
        if self._cpu is not None:
            joules, source = self._cpu.read_j() - self._cpu_j0, "rapl"
        else:
            joules, source = cpu_s * self._watts, f"estimate:{self._watts:g}W/core"
        if self._gpu is not None:
            joules += self._gpu.read_j() - self._gpu_j0
            source += "+nvml"
        rows = [Measurement("run_cpu_time", cpu_s, "s", source="process"),
                Measurement("run_energy", joules, "J", source=source)]
        try:
            g_per_kwh, where = default_carbon_intensity()
        except Exception as exc:  # noqa: BLE001 - a bad $FRUGAL_REGION must not lose the run
            log.warning("no CO2e for this run: %s", exc)
            return rows
        rows.append(Measurement("run_co2e", joules / 3.6e6 * g_per_kwh, "g", source=where))
        return rows
