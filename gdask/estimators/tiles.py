"""Tile-by-tile evaluation of a kernel-local image function, in-process or on a cluster.

A function whose output pixel depends on the inputs within ``h`` pixels
(a kernel half-width) is evaluated on tiles: each tile receives its input
cutout with an ``h``-pixel margin (zeros beyond the image, as the untiled
computation pads), and the tile results are placed back without seams.
With ``client=None`` the tiles run in this process; with a Dask client each
tile is one task (inputs scattered once), so a lost worker only re-runs its
tiles and the merged result is unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["tile_slices", "map_tiles"]


def tile_slices(shape: tuple[int, int], tile: int) -> list[tuple[slice, slice]]:
    """Output tiles ``(slice_y, slice_x)`` covering an image of ``shape``.

    Examples
    --------
    >>> len(tile_slices((150, 150), 64))
    9
    """
    ny, nx = shape
    return [
        (slice(y, min(y + tile, ny)), slice(x, min(x + tile, nx)))
        for y in range(0, ny, tile)
        for x in range(0, nx, tile)
    ]


def _run_tile(
    func: Callable[..., dict[str, NDArray]],
    padded: tuple[NDArray, ...],
    valid: NDArray[np.bool_],
    sl: tuple[slice, slice],
    h: int,
    kwargs: dict[str, Any],
) -> dict[str, NDArray]:
    sy, sx = sl
    cut = (slice(sy.start, sy.stop + 2 * h), slice(sx.start, sx.stop + 2 * h))
    return func(*(a[cut] for a in padded), valid=valid[sl], **kwargs)


def map_tiles(
    func: Callable[..., dict[str, NDArray]],
    images: tuple[NDArray, ...],
    h: int,
    valid: NDArray[np.bool_],
    tile: int = 64,
    client: Any = None,
    **kwargs: Any,
) -> dict[str, NDArray]:
    """Evaluate ``func`` tile by tile on zero-padded images and merge the outputs.

    Parameters
    ----------
    func : callable
        ``func(*padded_tile_images, valid=..., **kwargs) -> {name: (ty, tx) array}``.
    images : tuple of ndarray
        ``(ny, nx)`` input images.
    h : int
        Margin (kernel half-width) in pixels.
    valid : ndarray of bool
        ``(ny, nx)`` pixels to evaluate.
    tile : int
        Output tile size in pixels.
    client : distributed.Client, optional
        Run one task per tile on this cluster; in-process when None.

    Returns
    -------
    dict of ndarray
        ``(ny, nx)`` merged maps.

    Examples
    --------
    >>> import numpy as np
    >>> f = lambda a, valid: {"s": a[1:-1, 1:-1] + a[:-2, 1:-1]}
    >>> img = np.arange(16.0).reshape(4, 4)
    >>> out = map_tiles(f, (img,), 1, np.ones((4, 4), bool), tile=2)
    >>> float(out["s"][1, 1])
    6.0
    """
    ny, nx = images[0].shape
    padded = tuple(np.pad(np.asarray(a, float), h) for a in images)
    slices = tile_slices((ny, nx), tile)
    if client is None:
        parts = [_run_tile(func, padded, valid, sl, h, kwargs) for sl in slices]
    else:
        p_fut = client.scatter(padded, broadcast=True)
        v_fut = client.scatter(valid, broadcast=True)
        futures = [
            client.submit(_run_tile, func, p_fut, v_fut, sl, h, kwargs, pure=False) for sl in slices
        ]
        parts = client.gather(futures)
    out: dict[str, NDArray] = {}
    for sl, part in zip(slices, parts, strict=True):
        for key, val in part.items():
            if key not in out:
                out[key] = np.full((ny, nx), np.nan)
            out[key][sl] = val
    return out
