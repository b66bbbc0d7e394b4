"""Comparison of FITS table HDUs for the round-trip tests."""

from __future__ import annotations

import re

import numpy as np
from astropy.io import fits

from gdask.dl3.irf.table import STRUCTURAL_KEYWORDS

_STRUCTURAL = re.compile(
    r"^(XTENSION|BITPIX|NAXIS\d*|PCOUNT|GCOUNT|TFIELDS|(TTYPE|TFORM|TUNIT|TDIM)\d+)$"
)


def assert_same_table_hdu(a: fits.BinTableHDU, b: fits.BinTableHDU) -> None:
    """Same columns (names, formats, units, values, dtypes) and header keywords.

    Non-structural cards must match in order, value and comment; the
    structural and column cards match as a set (astropy places them on write).
    """
    assert a.columns.names == b.columns.names
    for ca, cb in zip(a.columns, b.columns, strict=True):
        assert (ca.format, ca.unit, ca.dim) == (cb.format, cb.unit, cb.dim), ca.name
        va, vb = a.data[ca.name], b.data[cb.name]
        assert va.dtype == vb.dtype and va.shape == vb.shape, ca.name
        assert np.array_equal(va, vb, equal_nan=va.dtype.kind == "f"), ca.name

    def cards(h, structural):
        return [
            (c.keyword, c.value, c.comment)
            for c in h.cards
            if bool(_STRUCTURAL.match(c.keyword)) == structural
        ]

    assert cards(a.header, False) == cards(b.header, False)
    assert sorted(cards(a.header, True), key=str) == sorted(cards(b.header, True), key=str)


def assert_roundtrip(hdu, out):
    """IRF round trip: same columns (values, dtype, order) and the same non-structural keywords."""
    assert [c.name for c in out.columns] == [c.name for c in hdu.columns]
    for c in hdu.columns:
        a, b = hdu.data[c.name], out.data[c.name]
        np.testing.assert_array_equal(b, a)
        assert (a.dtype.kind, a.dtype.itemsize) == (b.dtype.kind, b.dtype.itemsize)

    def keys(h):
        return {
            k: h[k]
            for k in h
            if k not in STRUCTURAL_KEYWORDS
            and not k.startswith(("NAXIS", "TTYPE", "TFORM", "TUNIT", "TDIM", "COMMENT", "HISTORY"))
        }

    assert keys(out.header) == keys(hdu.header)
