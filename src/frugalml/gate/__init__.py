"""Deployment contexts, budgets, and the CI gate: `gate(model, config) -> Verdict`."""

from frugalml.gate._measure import Measured, measure_model
from frugalml.gate.budgets import BudgetCheck, check_budgets
from frugalml.gate.contexts import CONTEXTS, Context, get_context
from frugalml.gate.verdict import Regression, Verdict, evaluator_for, gate

__all__ = ["gate", "Verdict", "Regression", "BudgetCheck", "check_budgets", "Context", "CONTEXTS", "get_context",
           "Measured", "measure_model", "evaluator_for"]
