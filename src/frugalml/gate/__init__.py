"""Deployment contexts, budgets, and the CI gate: `gate(model, config) -> Verdict`."""

from frugalml.gate._measure import Measured, measure_model
from frugalml.gate.budgets import BudgetCheck, check_budgets
from frugalml.gate.contexts import CONTEXTS, Context, get_context
from frugalml.gate.verdict import Regression, Verdict, evaluator_for, gate

__all__ = [
           "CONTEXTS",
           "BudgetCheck",
           "Context",
           "Measured",
           "Regression",
           "Verdict",
           "check_budgets",
           "evaluator_for",
           "gate",
           "get_context",
           "measure_model",
]
