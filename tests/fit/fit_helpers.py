"""Helpers of the fit tests: toy models and specs (toy terms in `fit_toyterms`)."""

from __future__ import annotations

import fit_toyterms  # noqa: F401  (registers toy-linear and toy-gauss in this process)

from gdask.likelihood import TermSpec
from gdask.models import (
    FoVBackgroundModel,
    Models,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
)

#: modules the workers import before building terms
PRELOAD = ("fit_toyterms",)


def make_models(n_datasets: int, bkg: bool = True) -> Models:
    """A power law for all datasets plus a free background norm per dataset."""
    comps = [
        SkyModel(PowerLawSpectralModel(index=2.3, amplitude="2e-12 cm-2 s-1 TeV-1"), name="src")
    ]
    if bkg:
        for i in range(n_datasets):
            comps.append(FoVBackgroundModel(f"d{i}", PowerLawNormSpectralModel(norm=1.0)))
    return Models(comps)


def make_specs(models: Models, n: int, kind: str = "toy-gauss", **options) -> list[TermSpec]:
    """``n`` datasets ``d0..`` of a toy kind, with seeds 100, 101, ..."""
    data = models.to_dict(full_output=True)
    return [
        TermSpec(
            kind=kind, name=f"d{i}", source="", models=data, options={"seed": 100 + i, **options}
        )
        for i in range(n)
    ]
