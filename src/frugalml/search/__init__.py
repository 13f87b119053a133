"""Multi-objective search over compression recipes: `optimize(config) -> SearchResult`."""

from frugalml.search._optimize import SearchResult, optimize, study_name_for
from frugalml.search.pareto import hypervolume_2d, pareto_front
from frugalml.search.space import Candidate, screening_params, suggest

__all__ = [
           "Candidate",
           "SearchResult",
           "hypervolume_2d",
           "optimize",
           "pareto_front",
           "screening_params",
           "study_name_for",
           "suggest",
]
