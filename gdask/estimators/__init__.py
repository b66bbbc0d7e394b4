"""Estimators above the fit: sky maps (excess, significance, TS maps), sensitivity,
flux points and light curves.

Imports point one way: estimators may use `gdask.fit`, `gdask.likelihood`,
`gdask.datasets`, `gdask.models`, `gdask.stats` and `gdask.geometry`;
nothing below imports estimators.  Numerics are pure functions on arrays
(`gdask.estimators.amplitude`); Dask only enters in the tiling driver
(`gdask.estimators.tiles`, ``client=None`` runs in-process).
"""
