"""Forward folding and per-dataset likelihood terms (statistic and gradient from one pass)."""

from gdask.likelihood.term import (
    TERM_BUILDERS,
    LikelihoodTerm,
    Request,
    TermSpec,
    build_term,
    register_term,
)

__all__ = ["LikelihoodTerm", "Request", "TermSpec", "build_term", "register_term", "TERM_BUILDERS"]
