"""Quality: `evaluate()` overall, per subgroup (fairlearn MetricFrame) and against a reference."""

from frugalml.evaluate._evaluate import (
    Estimate,
    Evaluation,
    Evaluator,
    dropped_group,
    eval_dataset,
    evaluate,
    evaluation_headline,
)

__all__ = ["Estimate", "Evaluation", "Evaluator", "dropped_group", "eval_dataset", "evaluate", "evaluation_headline"]
