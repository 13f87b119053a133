"""Monitoring (``frugal monitor``): data, prediction and embedding drift (PSI, KS, chi-squared, MMD) and
efficiency regressions from the run store; `DriftWindow` runs the same checks live in `frugal serve`."""

from frugalml.monitor._drift import (PSI_ALERT, PSI_WARN, FeatureDrift, mmd_test, psi_categorical, psi_noise,
                                     psi_numeric)
from frugalml.monitor._monitor import DriftWindow, MonitorReport, efficiency_trend, monitor

__all__ = ["PSI_ALERT", "PSI_WARN", "DriftWindow", "FeatureDrift", "MonitorReport", "efficiency_trend", "mmd_test",
           "monitor", "psi_categorical", "psi_noise", "psi_numeric"]
