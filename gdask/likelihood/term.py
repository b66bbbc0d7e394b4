"""The per-dataset likelihood term: the unit the coordinator distributes.

A joint fit is a sum of terms, one per dataset (plus priors, which the
coordinator adds itself). Every term sees the same thing: the full parameter
vector of the joint `~gdask.models.Models` (``models.parameters.value``, in
each parameter's stored unit, frozen ones included, linked ones repeated),
and returns its statistic and the gradient with respect to that same vector.
What each position of that vector is -- component slices, unique slots, names,
unit factors, the datasets each component applies to -- is stated once by the
`~gdask.models.ParameterLayout` shipped in ``TermSpec.layout``; terms read
their offsets from it (and declare ``depends_on``, the positions they read),
and the coordinator maps the free unique parameters onto the vector with it
(``expand`` one way, ``reduce_grad`` back).

A term is pure: ``(values, request) -> (stat, gradient)`` depends on its
arguments only (``request``, a `Request`, selects a subset of the term's fitted
bins; None: all of them), never on what was evaluated before, and evaluating never
writes a model object (internal caches are keyed on everything their result
depends on).  The coordinator's per-term cache relies on it.

Terms are built from a plain, picklable `TermSpec` by `build_term`, so a
Dask task can build one on a worker from the dataset store and keep it
resident there; when a worker dies the same spec rebuilds it elsewhere.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdask.models import Models, ParameterLayout

__all__ = [
    "LikelihoodTerm",
    "Request",
    "TermSpec",
    "register_term",
    "build_term",
    "TERM_BUILDERS",
]


@dataclass(frozen=True)
class Request:
    """What a term is evaluated on besides the parameters: a subset of its fitted bins.

    The selection is intersected with the term's own fitted bins (``mask_safe
    & mask_fit & energy range``); the term is neither rebuilt nor its dataset
    re-read, and results are cached per request (it is hashable).  What flux
    points and light curves use to fit one energy band of a resident term.

    Parameters
    ----------
    energy_min, energy_max : float, optional
        Keep the reconstructed-energy bins fully inside ``[energy_min,
        energy_max]`` (TeV), as the ``energy_min``/``energy_max`` options.
    energy_bins : tuple of int, optional
        Keep only these reconstructed-energy bins (indices on the dataset's axis).

    Examples
    --------
    >>> req = Request(energy_min=1.0, energy_max=10.0)
    >>> req.energy_mask(np.array([0.5, 1.0, 3.0, 10.0, 30.0])).tolist()
    [False, True, True, False]
    >>> Request(energy_bins=(0, 3)).energy_mask(np.array([0.5, 1.0, 3.0, 10.0, 30.0])).tolist()
    [True, False, False, True]
    """

    energy_min: float | None = None
    energy_max: float | None = None
    energy_bins: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.energy_bins is not None:
            object.__setattr__(self, "energy_bins", tuple(int(i) for i in self.energy_bins))
        for key in ("energy_min", "energy_max"):
            v = getattr(self, key)
            if v is not None:
                object.__setattr__(self, key, float(v))

    def energy_mask(self, edges: np.ndarray, unit: str = "TeV") -> np.ndarray:
        """Bins kept, one bool per reconstructed-energy bin of an axis with ``edges``.

        ``edges`` in ``unit`` as stored in the dataset (the energy range is
        applied exactly as `~gdask.likelihood.folding.energy_range_mask`, i.e.
        as the term's own ``energy_min``/``energy_max`` options).
        """
        from gdask.likelihood.folding import energy_range_mask

        edges = np.asarray(edges, dtype=float)
        keep = energy_range_mask(edges, self.energy_min, self.energy_max, unit=unit)
        if self.energy_bins is not None:
            n = edges.size - 1
            bad = [i for i in self.energy_bins if not 0 <= i < n]
            if bad:
                raise ValueError(f"energy_bins {bad} outside the {n} bins of the dataset")
            sel = np.zeros(n, dtype=bool)
            sel[list(self.energy_bins)] = True
            keep = keep & sel
        return keep


class LikelihoodTerm(abc.ABC):
    """One dataset's contribution to the joint statistic (-2 log L up to a constant).

    Attributes
    ----------
    name : str
        The dataset name (what ``datasets_names`` of a model refers to).
    n_parameters : int
        Length of the joint parameter vector this term was built for.
    depends_on : ndarray of int or None
        Positions of the joint vector the term's value can depend on (what a
        result cache may be keyed on); None, the default, means all of them.
        Built-in terms declare it from their `~gdask.models.ParameterLayout`;
        a custom term must not declare fewer positions than it reads.
    """

    name: str
    n_parameters: int
    depends_on: np.ndarray | None = None

    #: whether `stat` and `stat_and_grad` accept a `Request` (built-in terms do)
    supports_requests: bool = False

    @abc.abstractmethod
    def stat(self, values: np.ndarray, request: Request | None = None) -> float:
        """The statistic at the joint parameter vector ``values`` (on ``request``'s bins)."""

    @abc.abstractmethod
    def stat_and_grad(
        self, values: np.ndarray, request: Request | None = None
    ) -> tuple[float, np.ndarray]:
        """The statistic and its gradient (length ``n_parameters``) from one pass.

        A pure function of ``(values, request)``; terms without
        `supports_requests` may omit the ``request`` argument.
        """

    def npred(self, values: np.ndarray) -> np.ndarray:  # pragma: no cover - optional
        """Predicted counts at ``values`` (for residuals and plots)."""
        raise NotImplementedError

    def info(self) -> dict[str, Any]:
        """Small, picklable facts for summaries and plots (counts, energy edges, ...)."""
        return {"name": self.name}


@dataclass(frozen=True)
class TermSpec:
    """Everything needed to build a term anywhere: picklable, small, no arrays.

    Parameters
    ----------
    kind : str
        Which builder (``"map"``, ``"spectrum"``, ...; see `register_term`).
    name : str
        Dataset name.
    source : str
        Where the dataset lives: a dataset-store path (with ``name`` as group)
        or a file readable by the builder.
    models : dict
        The joint models as a Gammapy-layout dict (``Models.to_dict()``).
    options : dict
        Builder options (fit energy range, statistic, ...).
    layout : ParameterLayout, optional
        The layout of the full parameter vector; computed from ``models`` when
        omitted (None only if ``models`` cannot be parsed, e.g. a custom
        builder's own format).  Terms read offsets from it, never from the models.
    """

    kind: str
    name: str
    source: str
    models: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    layout: ParameterLayout | None = None

    def __post_init__(self) -> None:
        if self.layout is None and isinstance(self.models, dict):
            try:
                lay = Models.from_dict(self.models).layout()
            except Exception:  # noqa: BLE001 - not a models dict: the builder decides
                lay = None
            object.__setattr__(self, "layout", lay)

    def __hash__(self) -> int:  # dict fields: hash by identity of what matters
        return hash((self.kind, self.name, self.source))


TERM_BUILDERS: dict[str, Callable[[TermSpec], LikelihoodTerm]] = {}


def register_term(kind: str) -> Callable:
    """Decorator registering a builder ``f(spec) -> LikelihoodTerm`` under ``kind``."""

    def deco(func: Callable[[TermSpec], LikelihoodTerm]) -> Callable[[TermSpec], LikelihoodTerm]:
        TERM_BUILDERS[kind] = func
        return func

    return deco


def build_term(spec: TermSpec) -> LikelihoodTerm:
    """Build the term described by ``spec`` (imports the built-in builders on first use)."""
    if spec.kind not in TERM_BUILDERS:
        import importlib

        for mod in (
            "gdask.likelihood.spectrum",
            "gdask.likelihood.map",
            "gdask.likelihood.flux_points",
        ):
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as exc:
                if exc.name != mod:
                    raise
    try:
        builder = TERM_BUILDERS[spec.kind]
    except KeyError:
        from gdask.errors import ConfigError

        raise ConfigError(
            f"unknown dataset kind {spec.kind!r}; known: {sorted(TERM_BUILDERS)}", field="kind"
        ) from None
    return builder(spec)
