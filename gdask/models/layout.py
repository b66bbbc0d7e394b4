"""The parameter layout of a joint fit: one frozen description of the flat vector.

Every likelihood term receives the same *full* vector: ``Models.parameters.value``
(every parameter of every component, in model order, frozen ones included,
linked ones repeated, each in its stored unit).  `ParameterLayout` says once
what each position of that vector is:

* per component (`ComponentLayout`): its name and type, its slice of the
  vector and of each part (``spectral``, ``spatial``, ``temporal``), the
  datasets it applies to (``datasets_names``; None: all);
* per parameter: its unique name ``<model>.<type>.<name>``, its slot in the
  *unique* vector (linked parameters share a slot; the slot's representative
  is its first parameter), the factor to its canonical unit
  (``theta = values * to_canonical``) and the factor from the representative's
  unit to its own (``full = unique[index] * conv``).

The layout is computed once from the models (`ParameterLayout.from_models`),
is picklable and immutable, travels inside every
`~gdask.likelihood.TermSpec`, and is what terms, the coordinator's cache and
`~gdask.fit.FitProblem` read offsets from; nobody walks the models again.
It does not hold values, bounds or frozen flags: those belong to a fit.

Example
-------
>>> from gdask.models import Models, SkyModel, PowerLawSpectralModel
>>> lay = ParameterLayout.from_models(Models([SkyModel(PowerLawSpectralModel(), name="src")]))
>>> lay.component("src").part("spectral")
slice(0, 3, None)
>>> lay.position("src.spectral.index")
1
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .parameters import Parameters

__all__ = ["ComponentLayout", "ParameterLayout", "PARTS"]

#: the parts of a component, in the order their parameters appear
PARTS = ("spectral", "spatial", "temporal")


@dataclass(frozen=True)
class ComponentLayout:
    """Where one top-level component's parameters sit in the full vector.

    Attributes
    ----------
    name : str
        The component's (unique) name.
    type : str
        Its YAML type (``"SkyModel"``, ``"FoVBackgroundModel"``, ...).
    start, stop : int
        Its positions ``start:stop`` in the full vector.
    parts : tuple of (str, int, int)
        ``(part, start, stop)`` per part present (``spectral``, ``spatial``,
        ``temporal``), absolute positions.
    datasets_names : tuple of str or None
        Datasets it applies to (None: every dataset).
    """

    name: str
    type: str
    start: int
    stop: int
    parts: tuple[tuple[str, int, int], ...]
    datasets_names: tuple[str, ...] | None

    @property
    def slice(self) -> slice:
        """Its slice of the full vector."""
        return slice(self.start, self.stop)

    @property
    def n_parameters(self) -> int:
        """Number of parameters of the component."""
        return self.stop - self.start

    def part(self, kind: str) -> builtins.slice:
        """Slice of one part (empty, at the part's would-be place, when absent)."""
        end = self.start
        for k, a, b in self.parts:
            if k == kind:
                return slice(a, b)
            if k in PARTS and kind in PARTS and PARTS.index(k) < PARTS.index(kind):
                end = b
        return slice(end, end)

    def has_part(self, kind: str) -> bool:
        """Whether the component has that part."""
        return any(k == kind for k, _, _ in self.parts)

    def applies_to(self, dataset: str) -> bool:
        """Whether the component contributes to dataset ``dataset``."""
        return self.datasets_names is None or dataset in self.datasets_names


@dataclass(frozen=True)
class ParameterLayout:
    """The frozen layout of the full parameter vector of a joint set of models.

    Build it with `from_models`; all attributes are tuples (hashable, cheap to
    pickle), the array views are computed on first use.

    Attributes
    ----------
    components : tuple of ComponentLayout
    names : tuple of str
        ``<model>.<type>.<name>`` of every parameter of the full vector.
    slots : tuple of int
        Per parameter, its slot in the unique vector.
    first : tuple of int
        Per slot, the position of its representative (first) parameter.
    canonical : tuple of float
        Per parameter, stored unit -> canonical unit factor.
    link_factors : tuple of float
        Per parameter, representative's unit -> its own unit (1 when unlinked).
    """

    components: tuple[ComponentLayout, ...]
    names: tuple[str, ...]
    slots: tuple[int, ...]
    first: tuple[int, ...]
    canonical: tuple[float, ...]
    link_factors: tuple[float, ...]

    # -------------------------------------------------------------- build
    @classmethod
    def from_models(cls, models: Iterable[Any]) -> ParameterLayout:
        """The layout of ``models`` (a `~gdask.models.Models` or list of components)."""
        components: list[ComponentLayout] = []
        names: list[str] = []
        pars: list[Any] = []
        pos = 0
        for m in models:
            mpars = list(m.parameters)
            parts: list[tuple[str, int, int]] = []
            a = pos
            for kind in PARTS:
                sub = getattr(m, f"{kind}_model", None)
                if sub is not None:
                    n = len(sub.parameters)
                    parts.append((kind, a, a + n))
                    a += n
            if a != pos + len(mpars):  # not spectral x spatial x temporal: one part
                parts = [(str(getattr(m, "type", "model")), pos, pos + len(mpars))]
            labels = getattr(m, "parameters_names", None) or [p.name for p in mpars]
            names.extend(f"{m.name}.{n}" for n in labels)
            tag = getattr(m, "tag", None)
            dn = getattr(m, "datasets_names", None)
            components.append(
                ComponentLayout(
                    name=str(m.name),
                    type=str(tag[0] if tag else type(m).__name__),
                    start=pos,
                    stop=pos + len(mpars),
                    parts=tuple(parts),
                    datasets_names=None if dn is None else tuple(str(d) for d in dn),
                )
            )
            pars.extend(mpars)
            pos += len(mpars)
        flat = Parameters(pars).flat_layout()
        slots, first = [int(i) for i in flat.index], [int(i) for i in flat.first]
        conv = []
        for p, s in zip(pars, slots, strict=True):
            rep = pars[first[s]]
            conv.append(1.0 if rep.unit == p.unit else float(rep.unit.to(p.unit)))
        return cls(
            components=tuple(components),
            names=tuple(names),
            slots=tuple(slots),
            first=tuple(first),
            canonical=tuple(float(p.to_canonical) for p in pars),
            link_factors=tuple(conv),
        )

    # ------------------------------------------------------------ sizes
    @property
    def n_parameters(self) -> int:
        """Length of the full vector."""
        return len(self.names)

    @property
    def n_unique(self) -> int:
        """Length of the unique vector."""
        return len(self.first)

    @property
    def unique_names(self) -> list[str]:
        """Names of the unique slots (their representatives' names)."""
        return [self.names[i] for i in self.first]

    # ----------------------------------------------------------- arrays
    @cached_property
    def index(self) -> np.ndarray:
        """`slots` as an int array."""
        return _readonly(np.array(self.slots, dtype=int))

    @cached_property
    def to_canonical(self) -> np.ndarray:
        """`canonical` as a float array (``theta = values * to_canonical``)."""
        return _readonly(np.array(self.canonical, dtype=float))

    @cached_property
    def conv(self) -> np.ndarray:
        """`link_factors` as a float array."""
        return _readonly(np.array(self.link_factors, dtype=float))

    # ---------------------------------------------------------- queries
    def component(self, name: str) -> ComponentLayout:
        """The layout of the component called ``name``."""
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(f"no model {name!r}; have {[c.name for c in self.components]}")

    def for_dataset(self, dataset: str) -> tuple[ComponentLayout, ...]:
        """Components applying to ``dataset``, in model order."""
        return tuple(c for c in self.components if c.applies_to(dataset))

    def positions(self, dataset: str) -> np.ndarray:
        """Sorted positions of the full vector owned by components applying to ``dataset``."""
        idx = [np.arange(c.start, c.stop) for c in self.for_dataset(dataset)]
        return np.concatenate(idx) if idx else np.zeros(0, dtype=int)

    def datasets_of_slot(self) -> list[frozenset[str] | None]:
        """Per unique slot: the datasets whose statistic can depend on it (None: all)."""
        owners: list[set[str] | None] = [set() for _ in self.first]
        for c in self.components:
            for j in range(c.start, c.stop):
                s = self.slots[j]
                cur = owners[s]
                if cur is None:
                    continue
                owners[s] = None if c.datasets_names is None else cur | set(c.datasets_names)
        return [None if o is None else frozenset(o) for o in owners]

    def position(self, name: str) -> int:
        """Position of ``<model>.<type>.<name>``, ``<model>.<name>`` or a unique ``<name>``.

        Raises
        ------
        KeyError
            If no parameter, or more than one, has that name.
        """
        if name in self.names:
            return self.names.index(name)
        bare = [n.rsplit(".", 1)[-1] for n in self.names]
        short = [f"{c.name}.{bare[j]}" for c in self.components for j in range(c.start, c.stop)]
        for cand in (short, bare):
            hits = [i for i, n in enumerate(cand) if n == name]
            if len(hits) == 1:
                return hits[0]
        raise KeyError(f"parameter {name!r} not found (or ambiguous); use '<model>.<type>.<name>'")

    # -------------------------------------------------------- vectors
    def expand(self, unique: np.ndarray) -> np.ndarray:
        """The full vector from unique-slot values (linked members converted to their unit)."""
        return np.asarray(unique, dtype=float)[self.index] * self.conv

    def reduce_grad(self, grad: np.ndarray) -> np.ndarray:
        """Gradient over unique slots from a gradient over the full vector."""
        out = np.zeros(self.n_unique)
        np.add.at(out, self.index, np.asarray(grad, dtype=float) * self.conv)
        return out


def _readonly(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a
