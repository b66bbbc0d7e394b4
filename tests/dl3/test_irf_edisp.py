"""Tests of EnergyDispersion2D (edisp_2d)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from gdask.dl3.irf import EnergyDispersion2D, read_irf
from gdask.dl3.irf.edisp import reco_bin_probabilities
from gdask.errors import MissingColumnError, UnitError
from tests.dl3.fitscompare import assert_roundtrip

E_EDGES = np.geomspace(0.1, 100, 13)
M_EDGES = np.linspace(0.2, 2.0, 19)
O_EDGES = np.array([0.0, 1.0, 2.0])


def _gauss_edisp(sigma=0.1):
    m = 0.5 * (M_EDGES[1:] + M_EDGES[:-1])
    pdf = np.exp(-0.5 * ((m - 1) / sigma) ** 2) / (np.sqrt(2 * np.pi) * sigma)
    data = np.broadcast_to(pdf[None, :, None], (12, 18, 2)).astype(np.float32).copy()
    data[:, :, 1] *= 0.5  # offset dependence (norm only: the per-bin probabilities do not change)
    return EnergyDispersion2D.create(E_EDGES, M_EDGES, O_EDGES, data), data


def test_nodes_exact_and_fill():
    edisp, data = _gauss_edisp()
    e, m, o = np.meshgrid(
        *(edisp.nodes(d) for d in ("energy_true", "migra", "offset")), indexing="ij"
    )
    np.testing.assert_array_equal(edisp.evaluate(e, m, o), data.astype(float))
    assert edisp.evaluate(1.0, 1.0, 2.5) == 0.0  # offset out
    assert edisp.evaluate(1000.0, 3.0, 0.5) == 0.0  # energy and migra out
    assert edisp.evaluate(1000.0, 1.0, 0.5) > 0  # energy out only: extrapolated (as Gammapy)


def test_reco_probabilities_identity_like():
    edisp, _ = _gauss_edisp(sigma=0.05)
    etrue = np.array([0.55, 1.3, 5.5])
    reco = np.geomspace(0.1, 100, 31)
    p = edisp.reco_probabilities(etrue, 0.5, reco)
    assert p.shape == (3, 30)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, atol=1e-6)
    # the mode is in the bin containing the true energy
    np.testing.assert_array_equal(np.argmax(p, axis=-1), np.searchsorted(reco, etrue) - 1)
    p2 = edisp.reco_probabilities(etrue, 1.5, reco)  # pdf halved at this offset; normalised away
    np.testing.assert_allclose(p2, p, atol=1e-12)
    grid = edisp.reco_probabilities(etrue[:, None], np.array([0.5, 1.5]), reco)
    assert grid.shape == (3, 2, 30)


def test_reco_bin_probabilities_histogram():
    # flat pdf on [0.5, 1.5]: probabilities are the overlaps of [0.5, 1.5] * E = [1, 3] with the bins
    pdf = np.ones(4)
    edges = np.linspace(0.5, 1.5, 5)
    p = reco_bin_probabilities(pdf, edges, np.array(2.0), np.array([0.5, 1.0, 2.0, 2.5, 4.0]))
    np.testing.assert_allclose(p, [0.0, 0.5, 0.25, 0.25])


def test_roundtrip_and_errors():
    edisp, data = _gauss_edisp()
    hdu = edisp.to_hdu()
    assert hdu.header["HDUCLAS4"] == "EDISP_2D" and hdu.header["TDIM7"] == "(12,18,2)"
    back = read_irf(hdu, "edisp_2d")
    np.testing.assert_array_equal(back.ds["migration_pdf"].values, data)
    assert_roundtrip(hdu, back.to_hdu())
    cols = [c for c in hdu.columns if c.name != "MIGRA_LO"]
    with pytest.raises(MissingColumnError) as exc:
        EnergyDispersion2D.from_hdu(
            fits.BinTableHDU.from_columns(cols, header=hdu.header), obs_id=3
        )
    assert exc.value.field == "ENERGY DISPERSION.MIGRA_LO" and exc.value.obs_id == 3
    hdu.columns["THETA_LO"].unit = "m"
    with pytest.raises(UnitError, match="THETA_LO"):
        EnergyDispersion2D.from_hdu(fits.BinTableHDU.from_columns(hdu.columns, header=hdu.header))


EDISP_FILES = [
    ("hess-dl3-dr1/data/hess_dl3_dr1_obs_id_023523.fits.gz", "EDISP"),
    ("joint-crab/dl3/fact/fact_irf.fits", "ENERGY DISPERSION"),
    ("veritas/crab-point-like-ED/64080.fits.gz", "ENERGY DISPERSION"),
    ("joint-crab/dl3/magic/run_05029747_DL3.fits", "ENERGY DISPERSION"),
    ("magic/rad_max/data/20131004_05029747_DL3_CrabNebula-W0.40+035.fits", "ENERGY DISPERSION"),
]


@pytest.mark.realdata
@pytest.mark.parametrize(("path", "hdu_name"), EDISP_FILES)
def test_real_files(data_dir, path, hdu_name):
    f = data_dir / path
    with fits.open(f) as hl:
        hdu = hl[hdu_name]
        edisp = EnergyDispersion2D.from_hdu(hdu, file=str(f))
        raw = hdu.data["MATRIX"][0]
        np.testing.assert_array_equal(edisp.ds["migration_pdf"].values, raw.T)
        assert_roundtrip(hdu, edisp.to_hdu())
    off = float(edisp.nodes("offset")[0])
    p = edisp.reco_probabilities(np.array([1.0, 3.0]), off, np.geomspace(0.01, 300, 50))
    assert np.all(p >= 0) and np.all(p.sum(axis=-1) <= 1 + 1e-6)
