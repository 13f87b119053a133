"""Scaling laws: fit, plan, diagnose, sweep (``frugal scaling``)."""

from frugalml.scaling._fit import Fit, Points, fit_power_law, fit_two_resource, load_points, points_from_arrays
from frugalml.scaling._laws import CONSTANTS, FittedRange, PowerLaw, TwoResourceLaw, load_constants
from frugalml.scaling._plan import Diagnosis, Plan, ScalingWarning, diagnose, plan

__all__ = ["CONSTANTS", "Diagnosis", "Fit", "FittedRange", "Plan", "Points", "PowerLaw", "ScalingWarning",
           "TwoResourceLaw", "diagnose", "fit_power_law", "fit_two_resource", "load_constants", "load_points", "plan",
           "points_from_arrays"]
