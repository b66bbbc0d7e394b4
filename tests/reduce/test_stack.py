"""Unit tests of gdask.reduce.stack on synthetic datasets."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import xarray as xr

from gdask.datasets import MapDataset, MapDatasetOnOff, SpectrumDatasetOnOff
from gdask.dl3.gti import GTI
from gdask.geometry import EnergyAxis, WcsGeom
from gdask.reduce.stack import STACKED_ATTR, empty_like, stack_all, stack_into, stack_pair

E_RECO = EnergyAxis.from_bounds(0.7, 10, 4)
E_TRUE = EnergyAxis.from_bounds(0.5, 20, 6, name="energy_true")
GEOM = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.1, width=(2, 2), frame="icrs", proj="CAR")
VARS = ("counts", "background", "exposure", "psf", "psf_exposure", "edisp", "edisp_exposure")


def _map(seed: int, geom: WcsGeom = GEOM, onoff: bool = False, t0: float = 0.0) -> MapDataset:
    rng = np.random.default_rng(seed)
    d = MapDataset.create(geom, E_RECO, E_TRUE, binsz_irf=0.5, name=str(seed))
    ds = d.ds
    for k in ("counts", "background"):
        ds[k].values[:] = rng.poisson(5, ds[k].shape)
    ds["exposure"].values[:] = rng.uniform(1e9, 2e9, ds["exposure"].shape)
    mask = np.ones(ds["mask_safe"].shape, bool)
    mask[: seed % 3] = False  # energy threshold
    mask[:, :2, :] = seed % 2 == 0  # a spatial cut for odd seeds
    ds["mask_safe"].values[:] = mask
    for p in ("psf", "edisp"):
        ds[p].values[:] = rng.uniform(0, 1, ds[p].shape)
        ds[p + "_exposure"].values[:] = rng.uniform(1e9, 2e9, ds[p + "_exposure"].shape)
    meta = {"livetime": 100.0 * seed, "obs_ids": [seed]}
    ds.attrs["meta"] = __import__("json").dumps(meta)
    g = GTI.create([t0], [t0 + 100.0 * seed], mjdref=51910.0)
    out = MapDataset(
        geom,
        E_RECO,
        E_TRUE,
        counts=ds["counts"].values,
        exposure=ds["exposure"].values,
        background=ds["background"].values,
        mask_safe=mask,
        psf=d.psf,
        edisp=d.edisp,
        gti=g,
        name=str(seed),
        meta=meta,
    )
    if not onoff:
        return out
    off = rng.poisson(20, ds["counts"].shape).astype(float)
    off[0, 0, 0] = 0
    acc_off = rng.uniform(3, 6, off.shape)
    return MapDatasetOnOff(
        geom,
        E_RECO,
        E_TRUE,
        counts=ds["counts"].values,
        exposure=ds["exposure"].values,
        counts_off=off,
        acceptance=np.ones(off.shape),
        acceptance_off=acc_off,
        mask_safe=mask,
        psf=d.psf,
        edisp=d.edisp,
        gti=g,
        name=str(seed),
        meta=meta,
    )


def _spec(seed: int) -> SpectrumDatasetOnOff:
    rng = np.random.default_rng(seed)
    n, nt = E_RECO.nbin, E_TRUE.nbin
    mask = np.ones(n, bool)
    mask[: seed % 3] = False
    kernel = rng.uniform(0, 1, (nt, n))
    return SpectrumDatasetOnOff(
        E_RECO,
        E_TRUE,
        counts=rng.poisson(10, n),
        counts_off=rng.poisson(30, n),
        acceptance=np.ones(n),
        acceptance_off=rng.uniform(4, 8, n),
        mask_safe=mask,
        effective_area=rng.uniform(1e8, 2e8, nt),
        edisp=kernel / kernel.sum(1, keepdims=True),
        livetime=1000.0 * seed,
        name=str(seed),
    )


def _assert_same(x, y, keys, rtol=1e-12):
    for k in keys:
        np.testing.assert_allclose(x.ds[k].values, y.ds[k].values, rtol=rtol, atol=0, err_msg=k)


def test_map_stack_semantics():
    a, b = _map(1), _map(2)
    s = stack_pair(a, b)
    ma, mb = a.mask_safe.values, b.mask_safe.values
    exp_c = a.counts.values * ma + b.counts.values * mb
    np.testing.assert_array_equal(s.counts.values, exp_c)
    np.testing.assert_allclose(
        s.background.values, a.background.values * ma + b.background.values * mb
    )
    ia, ib = ma.any(0), mb.any(0)
    np.testing.assert_allclose(s.exposure.values, a.exposure.values * ia + b.exposure.values * ib)
    np.testing.assert_array_equal(s.mask_safe.values, ma | mb)
    assert s.meta["obs_ids"] == [1, 2] and s.meta["livetime"] == 300.0
    assert s.ds.attrs[STACKED_ATTR] == 1
    # IRF maps: exposure-weighted means
    ea, eb = a.ds["psf_exposure"].values, b.ds["psf_exposure"].values
    wa = ea * s_psf_weight(a)
    wb = eb * s_psf_weight(b)
    expect = (a.ds["psf"].values * wa[:, None] + b.ds["psf"].values * wb[:, None]) / (wa + wb)[
        :, None
    ]
    np.testing.assert_allclose(s.ds["psf"].values, expect, rtol=1e-12)


def s_psf_weight(d: MapDataset) -> np.ndarray:
    """Safe-mask image at the counts pixel nearest to each 0.5 deg IRF pixel centre."""
    from gdask.reduce.stack import _sample_mask

    return _sample_mask(d.mask_safe.values.any(0), d.geom, d.psf.geom, "up")


def test_edisp_masked_below_threshold():
    a = _map(2)  # reco bins 0, 1 outside the safe mask
    s = stack_all([a])
    k = s.ds["edisp"].values
    assert np.all(k[:, :2] == 0)
    np.testing.assert_allclose(k[:, 2:], a.ds["edisp"].values[:, 2:], rtol=1e-12)


@pytest.mark.parametrize("kind", ["map", "onoff", "spectrum"])
def test_associative_and_pure(kind):
    if kind == "spectrum":
        a, b, c = _spec(1), _spec(2), _spec(3)
        keys = ("counts", "counts_off", "acceptance", "acceptance_off", "effective_area", "edisp")
    else:
        a, b, c = (_map(i, onoff=kind == "onoff", t0=50.0 * i) for i in (1, 2, 3))
        keys = VARS + (("counts_off", "acceptance", "acceptance_off") if kind == "onoff" else ())
        keys = tuple(k for k in keys if k in a.ds)
    before = [copy.deepcopy(d.ds) for d in (a, b, c)]
    left = stack_pair(stack_pair(a, b), c)
    right = stack_pair(a, stack_pair(b, c))
    seq = stack_all([a, b, c])
    _assert_same(left, right, keys)
    _assert_same(left, seq, keys)
    for d, ds0 in zip((a, b, c), before, strict=True):
        xr.testing.assert_identical(d.ds, ds0)
    assert type(left) is type(a)


def test_onoff_alpha():
    a, b = _map(1, onoff=True), _map(2, onoff=True)
    s = stack_pair(a, b)
    ma, mb = a.mask_safe.values, b.mask_safe.values
    off = a.counts_off.values * ma + b.counts_off.values * mb
    aoff = a.alpha.values * a.counts_off.values * ma + b.alpha.values * b.counts_off.values * mb
    np.testing.assert_array_equal(s.counts_off.values, off)
    np.testing.assert_allclose(s.acceptance.values, ma * 1.0 + mb * 1.0)
    ok = off > 0
    np.testing.assert_allclose(s.alpha.values[ok], aoff[ok] / off[ok], rtol=1e-12)
    zero = (off == 0) & (s.acceptance.values > 0)
    assert zero.any()
    np.testing.assert_allclose(s.alpha.values[zero], aoff.sum() / off.sum(), rtol=1e-12)


def test_spectrum_stack():
    a, b = _spec(1), _spec(2)
    s = stack_pair(a, b)
    assert s.livetime == 3000.0
    np.testing.assert_allclose(s.exposure.values, a.exposure.values + b.exposure.values)
    num = a.edisp.values * a.exposure.values[:, None] * a.mask_safe.values
    num += b.edisp.values * b.exposure.values[:, None] * b.mask_safe.values
    den = a.exposure.values + b.exposure.values
    np.testing.assert_allclose(s.edisp.values, num / den[:, None], rtol=1e-12)
    assert "areascal" not in s.ds


def test_livetime_and_exposure_ignore_fully_masked():
    a, b = _map(1), _map(2)
    b.ds["mask_safe"].values[:] = False
    s = stack_pair(a, b)
    assert s.meta["livetime"] == 100.0
    np.testing.assert_allclose(s.exposure.values, a.exposure.values * a.mask_safe.values.any(0))


def test_gti_union():
    a, b = _map(1, t0=0.0), _map(2, t0=50.0)  # [0, 100] and [50, 250]
    g = stack_pair(a, b).gti
    np.testing.assert_allclose(g.start, [0.0])
    np.testing.assert_allclose(g.stop, [250.0])
    c = _map(1, t0=1000.0)
    g = stack_pair(a, c).gti
    np.testing.assert_allclose(g.start, [0.0, 1000.0])


def test_stack_into_cutouts():
    full = [_map(i) for i in (1, 2)]
    parent = empty_like(full[0])
    cut_geom = GEOM.cutout((83.6, 22.0), 1.0)
    irf_cut = full[0].psf.geom.cutout((83.6, 22.0), 1.0, min_npix=3)
    acc = parent
    for d in full:
        acc = stack_into(acc, _cut(d, cut_geom, irf_cut))
    sl = cut_geom.cutout_slices(GEOM)["parent-slices"]
    expect = sum(d.counts.values * d.mask_safe.values for d in full)
    np.testing.assert_array_equal(acc.counts.values[(Ellipsis,) + sl], expect[(Ellipsis,) + sl])
    outside = np.ones(GEOM.shape, bool)
    outside[sl] = False
    assert np.all(acc.counts.values[:, outside] == 0)
    assert not acc.mask_safe.values[:, outside].any()
    assert acc.meta["obs_ids"] == [1, 2]
    with pytest.raises(ValueError, match="different sky grids"):
        stack_pair(full[0], _cut(full[1], cut_geom, irf_cut))


def _cut(d: MapDataset, geom: WcsGeom, irf: WcsGeom) -> MapDataset:
    s = geom.cutout_slices(d.geom)["parent-slices"]
    si = irf.cutout_slices(d.psf.geom)["parent-slices"]
    psf, ed = d.psf, d.edisp
    psf.data, psf.exposure, psf.geom = (
        psf.data[..., si[0], si[1]],
        psf.exposure[..., si[0], si[1]],
        irf,
    )
    ed.data, ed.exposure, ed.geom = ed.data[..., si[0], si[1]], ed.exposure[..., si[0], si[1]], irf
    cut = lambda k: d.ds[k].values[..., s[0], s[1]]  # noqa: E731
    return MapDataset(
        geom,
        E_RECO,
        E_TRUE,
        counts=cut("counts"),
        background=cut("background"),
        exposure=cut("exposure"),
        mask_safe=cut("mask_safe"),
        psf=psf,
        edisp=ed,
        name=d.name,
        meta=d.meta,
    )


def test_background_scaled_by_the_fov_norm():
    """Stacking sums the predicted background, norm x background (issue 9, item 1)."""
    a, b = _map(1), _map(2)
    a_ds, b_ds = a.ds.copy(), b.ds.copy()
    for ds, norm in ((a_ds, 0.9), (b_ds, 1.2)):
        meta = __import__("json").loads(ds.attrs["meta"])
        ds.attrs["meta"] = __import__("json").dumps(dict(meta, bkg_norm=norm, bkg_norm_error=0.1))
    na, nb = MapDataset.from_dataset(a_ds), MapDataset.from_dataset(b_ds)
    assert na.meta["bkg_norm"] == 0.9
    ma, mb = a.mask_safe.values, b.mask_safe.values
    expect = 0.9 * a.background.values * ma + 1.2 * b.background.values * mb
    s = stack_pair(na, nb)
    np.testing.assert_allclose(s.background.values, expect, rtol=1e-12)
    assert "bkg_norm" not in s.meta and "bkg_norm_error" not in s.meta
    # the norm is applied once: stacking the stacked dataset again adds nothing
    c = _map(3)
    np.testing.assert_allclose(
        stack_pair(s, c).background.values,
        expect + c.background.values * c.mask_safe.values,
        rtol=1e-12,
    )
    # the makers' xarray output carries the norm in its attrs
    a_ds.attrs["bkg_norm"] = 0.5
    np.testing.assert_allclose(
        stack_all([a_ds]).background.values, 0.5 * a.background.values * ma, rtol=1e-12
    )


def test_xarray_in_xarray_out_and_errors():
    a, b = _map(1), _map(2)
    s = stack_pair(a.ds, b.ds)
    assert isinstance(s, xr.Dataset)
    np.testing.assert_array_equal(s["counts"].values, stack_pair(a, b).counts.values)
    with pytest.raises(TypeError):
        stack_pair(a, _map(2, onoff=True))
    with pytest.raises(ValueError, match="nothing"):
        stack_all([])


def test_stacked_writes_and_reads(tmp_path):
    s = stack_all([_map(1), _map(2)], name="stacked")
    s.write(tmp_path / "s.fits")
    back = MapDataset.read(tmp_path / "s.fits")
    np.testing.assert_array_equal(back.counts.values, s.counts.values)
    assert back.name == "stacked"


def test_spectrum_edisp_weight_and_units_guard():
    a, b = _spec(1), _spec(2)
    for d, f in ((a, 0.5), (b, 0.25)):
        d.ds["edisp_exposure"] = (("energy_true",), d.exposure.values * f, {"units": "cm2 s"})
    s = stack_pair(a, b)
    wa, wb = a.ds["edisp_exposure"].values, b.ds["edisp_exposure"].values
    num = a.edisp.values * wa[:, None] * a.mask_safe.values
    num += b.edisp.values * wb[:, None] * b.mask_safe.values
    np.testing.assert_allclose(s.edisp.values, num / (wa + wb)[:, None], rtol=1e-12)
    np.testing.assert_allclose(s.ds["edisp_exposure"].values, wa + wb)
    m = _map(1)
    raw = m.ds.copy()
    raw["exposure"] = raw["exposure"].copy()
    raw["exposure"].attrs = {}
    with pytest.raises(ValueError, match="units"):
        stack_pair(m.ds, raw)
