"""Reflected-regions and wobble finders, exclusion masks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from regions import CircleSkyRegion, PointSkyRegion

from gdask.geometry import WcsGeom, circle_region
from gdask.reduce.reflected import (
    ReflectedRegionsFinder,
    WobbleRegionsFinder,
    find_reflected_regions,
    make_exclusion_mask,
    read_exclusion_mask,
    reference_geom,
)

POINTING = SkyCoord(83.633, 22.514, unit="deg")
TARGET = SkyCoord(83.633, 22.014, unit="deg")
ON = CircleSkyRegion(TARGET, Angle(0.11, "deg"))


def _separations(regions, center):
    return np.array([r.center.separation(center).deg for r in regions])


def test_reference_geom_size():
    ref = reference_geom(ON, POINTING, 0.01)
    assert ref.npix == (230, 230)  # 4 * 0.5 + 0.3 deg at 0.01 deg
    assert ref.projection == "TAN"


def test_reflected_no_exclusion():
    regions, wcs = ReflectedRegionsFinder().run(ON, POINTING)
    # all OFF regions on the circle through the ON centre, same size, no overlap with ON or each other
    assert len(regions) == 12  # what Gammapy 2.1 finds for this geometry
    np.testing.assert_allclose(_separations(regions, POINTING), 0.5, atol=2e-3)
    np.testing.assert_allclose([r.radius.deg for r in regions], 0.11, rtol=1e-3)
    centres = [ON.center] + [r.center for r in regions]
    for i in range(len(centres)):
        for j in range(i + 1, len(centres)):
            assert (
                centres[i].separation(centres[j]).deg >= 0.21
            )  # pixel-based sizes: touching allowed
    assert wcs.wcs.ctype[0] == "RA---TAN"


def test_reflected_max_region_number_and_min_distance():
    assert len(ReflectedRegionsFinder(max_region_number=3).run(ON, POINTING)[0]) == 3
    fewer = ReflectedRegionsFinder(min_distance="0.3 rad").run(ON, POINTING)[0]
    assert 0 < len(fewer) < 12


def test_reflected_exclusion_rejects_regions():
    geom = WcsGeom.create(skydir=POINTING, binsz=0.02, width=3, proj="TAN")
    # exclude a blob where the first OFF regions would go (west of the ON region)
    all_regions, _ = ReflectedRegionsFinder().run(ON, POINTING)
    blob = circle_region(all_regions[0].center.ra.deg, all_regions[0].center.dec.deg, 0.2)
    mask = make_exclusion_mask(geom, blob)
    assert mask.dtype == bool and not mask.values.all()
    regions, _ = ReflectedRegionsFinder().run(ON, POINTING, mask)
    assert 0 < len(regions) < len(all_regions)
    assert np.all(blob.center.separation(_centres(regions)).deg > 0.2)


def _centres(regions):
    return SkyCoord([r.center for r in regions])


def test_reflected_on_region_excluded_everywhere_gives_none():
    geom = WcsGeom.create(skydir=POINTING, binsz=0.05, width=4, proj="TAN")
    mask = make_exclusion_mask(geom, circle_region(POINTING.ra.deg, POINTING.dec.deg, 1.5))
    assert ReflectedRegionsFinder().run(ON, POINTING, mask)[0] == []


def test_reflected_rejects_point_region():
    with pytest.raises(TypeError):
        ReflectedRegionsFinder().run(PointSkyRegion(TARGET), POINTING)
    with pytest.raises(ValueError):
        ReflectedRegionsFinder(angle_increment=0)


def test_wobble_symmetric_positions():
    regions, _ = WobbleRegionsFinder(n_off_regions=3).run(ON, POINTING)
    assert len(regions) == 3
    seps = _separations(regions, TARGET)
    np.testing.assert_allclose(sorted(seps), [np.sqrt(2) * 0.5, np.sqrt(2) * 0.5, 1.0], atol=3e-3)


def test_wobble_point_and_overlap():
    pts, _ = find_reflected_regions(TARGET, POINTING, finder=WobbleRegionsFinder(5))
    assert len(pts) == 5 and all(isinstance(r, PointSkyRegion) for r in pts)
    big = CircleSkyRegion(TARGET, Angle(0.4, "deg"))
    assert WobbleRegionsFinder(5).run(big, POINTING)[0] == []  # overlapping OFF regions


@pytest.mark.realdata
def test_read_exclusion_mask_crab(data_dir):
    mask = read_exclusion_mask(data_dir / "joint-crab/exclusion/exclusion_mask_crab.fits.gz")
    assert mask.shape == (250, 250) and mask.dtype == bool
    geom = WcsGeom.from_dataset(mask)
    ix, iy = geom.coord_to_idx(83.633, 22.014)
    assert not mask.values[iy, ix]  # the Crab is excluded
    assert mask.values[0, 0]


@pytest.mark.realdata
def test_reflected_hess_run(data_dir):
    from gdask.dl3 import DL3Index, read_observation

    index = DL3Index.read(data_dir / "hess-dl3-dr1")
    obs = read_observation(index, 23523, hdu_types=["events", "gti"])
    ra, dec = obs.events.pointing
    mask = read_exclusion_mask(data_dir / "joint-crab/exclusion/exclusion_mask_crab.fits.gz")
    regions, _ = ReflectedRegionsFinder().run(ON, SkyCoord(ra, dec, unit="deg"), mask)
    assert len(regions) == 11  # Gammapy 2.1 finds 11 for this run
    assert np.all(TARGET.separation(_centres(regions)).deg > 0.3 + 0.11)
