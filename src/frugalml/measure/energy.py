"""Energy per item, measured where the hardware has a counter, estimated (and labelled so) otherwise.

Sources, in order of preference:
- ``nvml``: the GPU's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules,
  Volta and newer), for models on CUDA. The whole board's energy, idle draw included.
- ``rapl``: Intel/AMD RAPL package counters under ``/sys/class/powercap`` when readable, for CPU
  models. The whole package's energy, other processes included.
- ``estimate``: this process's CPU time (user + system, all threads) times a power per busy core:
  ``$FRUGAL_CPU_WATTS_PER_CORE`` if set, else codecarbon's default of 4 W per thread. An estimate,
  never reported as a measurement.

CO2e uses the carbon intensity (g CO2e per kWh) of a country's electricity mix from the tables
bundled with codecarbon; no network access.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from frugalml._validate import nearest
from frugalml.errors import InvalidArgumentError

__all__ = [
    "CpuTimeEstimate",
    "EnergyMeter",
    "EnergyStats",
    "NvmlMeter",
    "RaplMeter",
    "carbon_intensity_g_per_kwh",
    "co2e_g_per_1k_items",
    "default_carbon_intensity",
    "world_average_g_per_kwh",
    "measure_energy",
    "select_meter",
]

log = logging.getLogger(__name__)

_DEFAULT_WATTS_PER_CORE = 4.0  # codecarbon's DEFAULT_POWER_PER_CORE, used when nothing better is known


class EnergyMeter(Protocol):
    source: str
    note: str

    def read_j(self) -> float:
        """A cumulative energy reading in joules (differences are what matter)."""


class NvmlMeter:
    source = "nvml"

    def __init__(self, index: int = 0) -> None:
        import pynvml

        pynvml.nvmlInit()
        self._nvml = pynvml
        self._handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)  # raises if unsupported
        self.note = f"NVML total energy of GPU {index} (whole board)"

    def read_j(self) -> float:
        return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle) / 1e3  # mJ -> J


class RaplMeter:
    source = "rapl"

    def __init__(self, root: Path = Path("/sys/class/powercap")) -> None:
        zones = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        self._zones = [(z / "energy_uj", int((z / "max_energy_range_uj").read_text())) for z in zones]
        if not self._zones:
            raise OSError("no RAPL package zones")
        self._last = [int(f.read_text()) for f, _ in self._zones]  # raises PermissionError if unreadable
        self._total_uj = 0
        self.note = f"RAPL package counters ({len(self._zones)} package(s); other processes included)"

    def read_j(self) -> float:
        # Counters wrap at max_energy_range_uj; accumulate deltas so a wrap is not a negative reading.
        for i, (file, wrap) in enumerate(self._zones):
            now = int(file.read_text())
            delta = now - self._last[i]
            self._total_uj += delta if delta >= 0 else delta + wrap
            self._last[i] = now
        return self._total_uj / 1e6


class CpuTimeEstimate:
    source = "estimate"

    def __init__(self, watts_per_core: float | None = None) -> None:
        env = os.environ.get("FRUGAL_CPU_WATTS_PER_CORE")
        if watts_per_core is None and env:
            try:
                watts_per_core = float(env)
            except ValueError:
                raise InvalidArgumentError("FRUGAL_CPU_WATTS_PER_CORE", env, "must be a number of watts",
                                           "Set it to e.g. 4.") from None
        self.watts_per_core = watts_per_core if watts_per_core is not None else _DEFAULT_WATTS_PER_CORE
        if not self.watts_per_core > 0:
            raise InvalidArgumentError("watts_per_core", self.watts_per_core, "must be > 0", "Use e.g. 4.")
        self.note = f"estimate: process CPU time x {self.watts_per_core:g} W per busy core (no hardware counter)"

    def read_j(self) -> float:
        # process CPU time at ns resolution (psutil's /proc reading moves in 10 ms ticks)
        return time.process_time() * self.watts_per_core


def select_meter(device: str, *, gpu_index: int = 0) -> EnergyMeter:
    """The best energy source for ``device`` on this machine."""
    if device == "cuda":
        try:
            return NvmlMeter(gpu_index)
        except Exception as exc:  # noqa: BLE001 - pynvml raises NVMLError subclasses or ImportError
            log.warning("NVML energy counter unavailable (%s); energy will be a CPU-time estimate", exc)
    else:
        try:
            return RaplMeter()
        except (OSError, ValueError) as exc:
            log.debug("RAPL unavailable (%s); energy will be estimated", exc)
    return CpuTimeEstimate()


@dataclass(frozen=True)
class EnergyStats:
    joules: float
    items: int
    seconds: float
    source: str
    note: str

    @property
    def j_per_item(self) -> float:
        return self.joules / self.items

    @property
    def average_w(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "j_per_item": self.j_per_item, "average_w": self.average_w}


def measure_energy(fn: Callable[[], object], *, meter: EnergyMeter, items_per_call: int, min_s: float = 1.0,
                   min_calls: int = 3, synchronize: Callable[[], None] = lambda: None) -> EnergyStats:
    """Run ``fn`` for at least ``min_s`` seconds (counters update every few ms) and read the meter around it."""
    synchronize()
    calls = 0
    start_j, start = meter.read_j(), time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_s:
        fn()
        calls += 1
    synchronize()
    seconds = time.perf_counter() - start
    joules = meter.read_j() - start_j
    return EnergyStats(joules=joules, items=calls * items_per_call, seconds=seconds, source=meter.source,
                       note=meter.note)


def _energy_mix() -> dict[str, dict[str, object]]:
    from codecarbon.input import DataSource

    return DataSource().get_global_energy_mix_data()


def carbon_intensity_g_per_kwh(region: str) -> tuple[float, str]:
    """Carbon intensity of ``region`` (ISO 3166-1 alpha-3 country code) and the country's name."""
    if not isinstance(region, str):
        raise InvalidArgumentError("region", region, "must be a 3-letter country code", "Use e.g. --region USA.")
    mix = _energy_mix()
    code = region.strip().upper()
    if code not in mix:
        hint = nearest(code, mix)
        raise InvalidArgumentError("region", region, "is not an ISO 3166-1 alpha-3 country code in codecarbon's "
                                   "energy-mix table", "Use a code such as USA, FRA, DEU, IND."
                                   + (f" Did you mean {hint!r}?" if hint else ""))
    entry = mix[code]
    return float(entry["carbon_intensity"]), str(entry.get("country_name", code))


def world_average_g_per_kwh() -> float:
    """codecarbon's world-average carbon intensity (IEA), for when no region is known."""
    from codecarbon.input import DataSource

    return float(DataSource().get_carbon_intensity_per_source_data()["world_average"])


def default_carbon_intensity() -> tuple[float, str]:
    """Carbon intensity for run accounting: ``$FRUGAL_REGION``'s grid if set, else the world average.

    Returns (g CO2e per kWh, where it comes from: ``codecarbon:FRA`` or ``world-average``).
    """
    region = os.environ.get("FRUGAL_REGION")
    if region:
        value, _ = carbon_intensity_g_per_kwh(region)
        return value, f"codecarbon:{region.strip().upper()}"
    return world_average_g_per_kwh(), "world-average"


def co2e_g_per_1k_items(j_per_item: float, g_per_kwh: float) -> float:
    return j_per_item * 1000 / 3.6e6 * g_per_kwh
