"""ECAL digitisation and clustering: showers → cell energies with noise → 3×3 clusters with truth.

1. **Cells**: every shower of :func:`.ecal_showers.ecal_showers` spreads its visible energy
   over the cells (:func:`lamarr_col.kernels.ecal.ecal_deposit`, profile squares of half width
   ``REACH`` tail radii, cells below ``MIN_FRACTION`` of a shower dropped).
2. **Noise and read-out**: each real cell gets Gaussian electronic noise of ``noise_et`` (the
   condition set's ``[ecal]``) on the transverse-energy scale (σ_E = noise_et · r / ρ at the
   cell centre, r its distance to the target at z of shower maximum, ρ its distance to the
   beam); a cell becomes a digit when its transverse energy exceeds ``digit_et_min``, and so
   do all the cells around a cell of transverse energy ≥ ``seed_et_min`` (its 3×3 footprint,
   whatever their energy) so that a cluster's containment correction sees the cells it
   assumes [PLAUS: a neighbour read-out; a plain 4σ zero suppression would drop the corner
   cells of a 10 GeV photon in the inner region, E_T 10 MeV ≈ 250 MeV of energy there, and
   bias its energy by ≈ −2 %].
3. **Clusters**: :func:`lamarr_col.kernels.ecal_cluster.ecal_clusters`, local maxima with
   E_T ≥ ``seed_et_min`` and the digits of their 3×3 footprint, shared cells split in
   proportion to the seed energies.
4. **Corrections** (:mod:`.ecal_corrections`): the barycentre of the cell centres is pulled
   towards the seed cell's centre (the S-shape) and the share of the shower inside the 3×3
   cells depends on where it hit the seed cell; both are undone with the electromagnetic
   profile's own tables, the position first and then the energy at the corrected impact.
   :func:`containment` is the region's mean containment, for impacts spread evenly.
5. **Truth**: a cluster's contributors are the showers whose energy reached its cells, each
   weighted by the cell's share in the cluster; the main contributor is the one with most
   energy.

Random numbers: stream ``"ecal"``, event number, counter ``2⁴⁰ + cell id``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from lamarr_col.detailed.ecal_corrections import correct_clusters
from lamarr_col.detailed.ecal_showers import EM_PROFILE, STREAM, Showers, moliere_radius
from lamarr_col.detailed.recognition import concatenated_ranges
from lamarr_col.detector.calo_grid import CaloGrid
from lamarr_col.detector.conditions import Calorimeter
from lamarr_col.kernels.ecal import ecal_deposit, profile_fraction
from lamarr_col.kernels.ecal_cluster import ecal_clusters
from lamarr_col.rng import EventKeys

__all__ = [
    "MIN_FRACTION",
    "REACH",
    "Clusters",
    "Digits",
    "cluster_digits",
    "containment",
    "make_digits",
]

#: Half width of the squares a shower is spread over, in tail radii
REACH = 4.0
#: Cells receiving less than this fraction of a shower get none of it
MIN_FRACTION = 1e-4
_NOISE_COUNTER = np.uint64(1 << 40)


@dataclass(frozen=True)
class Digits:
    """Read-out cells, sorted by batch event then cell: ``cell``, ``energy`` (MeV, with
    noise), ``offsets`` (e + 1,); truth pairs ``pair_digit``, ``pair_shower`` (row of the
    :class:`.ecal_showers.Showers`), ``pair_energy`` (MeV), sorted by digit."""

    cell: npt.NDArray[np.int64]
    energy: npt.NDArray[np.float64]
    offsets: npt.NDArray[np.int64]
    pair_digit: npt.NDArray[np.int64]
    pair_shower: npt.NDArray[np.int64]
    pair_energy: npt.NDArray[np.float64]


@dataclass(frozen=True)
class Clusters:
    """Clusters sorted by batch event then seed cell: ``offsets`` (e + 1,); ``x``, ``y``, ``z``
    (mm, corrected position), ``e`` (MeV, corrected), ``e_raw`` (3×3 sum), ``e_seed``, ``sxx``, ``syy``, ``sxy``
    (mm², energy-weighted second moments), ``n_digits``, ``seed_cell``, ``region``; truth:
    ``main_shower`` (row of the showers, −1 for noise only), ``main_energy`` (MeV it brought),
    and all contributions ``contrib_offsets`` (c + 1,), ``contrib_shower``,
    ``contrib_energy`` (sorted by energy, largest first)."""

    offsets: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    z: npt.NDArray[np.float64]
    e: npt.NDArray[np.float64]
    e_raw: npt.NDArray[np.float64]
    e_seed: npt.NDArray[np.float64]
    sxx: npt.NDArray[np.float64]
    syy: npt.NDArray[np.float64]
    sxy: npt.NDArray[np.float64]
    n_digits: npt.NDArray[np.int64]
    seed_cell: npt.NDArray[np.int64]
    region: npt.NDArray[np.int8]
    main_shower: npt.NDArray[np.int64]
    main_energy: npt.NDArray[np.float64]
    contrib_offsets: npt.NDArray[np.int64]
    contrib_shower: npt.NDArray[np.int64]
    contrib_energy: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.x)


def _et_scale(grid: CaloGrid, z: float) -> npt.NDArray[np.float64]:
    """ρ / r of each cell centre: transverse energy per unit energy."""
    rho = np.hypot(grid.x, grid.y)
    return rho / np.sqrt(rho * rho + z * z)


def make_digits(
    showers: Showers,
    grid: CaloGrid,
    calo: Calorimeter,
    event_numbers: npt.NDArray[np.uint64],
    *,
    seed: int,
) -> Digits:
    """Cells with energy of each event of the batch (module docstring, steps 1–2)."""
    n_events = len(event_numbers)
    n_cells = grid.n_cells
    ev, cell, shower, energy = ecal_deposit(
        showers.x,
        showers.y,
        showers.visible,
        showers.event,
        np.arange(len(showers), dtype=np.int64),
        showers.r_core,
        showers.r_tail,
        showers.w_core,
        REACH,
        MIN_FRACTION,
        grid.region_cell,
        grid.region_x_max,
        grid.region_y_max,
        grid.region_inner_x,
        grid.region_inner_y,
        grid.region_ncol,
        grid.region_nrow,
        grid.region_offset,
    )
    key = ev * n_cells + cell
    flat = np.bincount(key, energy, minlength=n_events * n_cells).astype(np.float64)
    dense = flat.reshape(n_events, n_cells)
    scale = _et_scale(grid, calo.z_shower_max)
    real = np.flatnonzero(grid.valid)
    keys = EventKeys(seed)
    noise = keys.normal(
        STREAM, event_numbers[:, None], _NOISE_COUNTER + real.astype(np.uint64)[None, :]
    )
    dense[:, real] += noise * (calo.noise_et / np.maximum(scale[real], 1e-9))[None, :]
    read = np.zeros_like(dense, dtype=bool)
    et = dense[:, real] * scale[real][None, :]
    read[:, real] = et > calo.digit_et_min
    # every cell around a would-be seed is read out, whatever its energy
    s_ev, s_at = np.nonzero(et >= calo.seed_et_min)
    s_cell = real[s_at]
    start = grid.neighbour_offsets[s_cell]
    stop = grid.neighbour_offsets[s_cell + 1]
    around = grid.neighbour_index[concatenated_ranges(start, stop)]
    read[np.repeat(s_ev, stop - start), around] = True
    read &= grid.valid[None, :]
    d_ev, d_cell = np.nonzero(read)
    digit_key = d_ev * n_cells + d_cell
    # truth pairs of the digits (pairs in cells below the read-out threshold are dropped)
    at = np.searchsorted(digit_key, key)
    hit = (at < len(digit_key)) & (digit_key[np.minimum(at, len(digit_key) - 1)] == key)
    order = np.argsort(at[hit], kind="stable")
    return Digits(
        cell=d_cell.astype(np.int64),
        energy=dense[d_ev, d_cell],
        offsets=np.searchsorted(d_ev, np.arange(n_events + 1)).astype(np.int64),
        pair_digit=at[hit][order].astype(np.int64),
        pair_shower=shower[hit][order],
        pair_energy=energy[hit][order],
    )


@cache
def _containment(region_cell: tuple[float, ...], moliere_radius: float) -> tuple[float, ...]:
    w, rc, rt = EM_PROFILE
    out = []
    u = (np.arange(9) + 0.5) / 9 - 0.5  # impacts spread over the seed cell
    for c in region_cell:
        total = 0.0
        for ux in u:
            for uy in u:
                x0, x1 = -1.5 * c - ux * c, 1.5 * c - ux * c
                y0, y1 = -1.5 * c - uy * c, 1.5 * c - uy * c
                total += w * profile_fraction(x0, x1, y0, y1, rc * moliere_radius) + (
                    1.0 - w
                ) * profile_fraction(x0, x1, y0, y1, rt * moliere_radius)
        out.append(total / len(u) ** 2)
    return tuple(out)


def containment(grid: CaloGrid, calo: Calorimeter) -> npt.NDArray[np.float64]:
    """Mean fraction (per region) of an electromagnetic shower inside the 3×3 cells around
    its seed, for impacts spread evenly over the seed cell."""
    cells = tuple(float(c) for c in grid.region_cell)
    return np.array(_containment(cells, moliere_radius(calo)))


def cluster_digits(digits: Digits, grid: CaloGrid, calo: Calorimeter) -> Clusters:
    """Clusters of the digits with their corrections and truth (module docstring, 3–5)."""
    (
        offsets,
        seed_digit,
        e_raw,
        x,
        y,
        sxx,
        syy,
        sxy,
        e_seed,
        n_digits,
        member_offsets,
        member_digit,
        member_weight,
    ) = ecal_clusters(
        digits.cell,
        digits.energy,
        digits.offsets,
        grid.x,
        grid.y,
        grid.neighbour_offsets,
        grid.neighbour_index,
        float(calo.z_shower_max),
        calo.seed_et_min,
    )
    seed_cell = digits.cell[seed_digit]
    region = grid.region[seed_cell]
    x, y, e = correct_clusters(x, y, e_raw, seed_cell, grid, calo)

    # truth: every (member, pair of that member's digit), weighted by the member's share
    n_cl = len(seed_digit)
    member_cluster = np.repeat(np.arange(n_cl), np.diff(member_offsets))
    pair_start = np.searchsorted(digits.pair_digit, np.arange(len(digits.cell) + 1))
    count = pair_start[member_digit + 1] - pair_start[member_digit]
    rep = np.repeat(np.arange(len(member_digit)), count)
    pair = concatenated_ranges(pair_start[member_digit], pair_start[member_digit + 1])
    c_key = member_cluster[rep]
    s_key = digits.pair_shower[pair]
    amount = member_weight[rep] * digits.pair_energy[pair]
    n_sh = int(s_key.max()) + 1 if len(s_key) else 1
    uniq, inverse = np.unique(c_key * n_sh + s_key, return_inverse=True)
    summed = np.bincount(inverse, amount, minlength=len(uniq)).astype(np.float64)
    u_cluster, u_shower = uniq // n_sh, uniq % n_sh
    order = np.lexsort((-summed, u_cluster))
    u_cluster, u_shower, summed = u_cluster[order], u_shower[order], summed[order]
    contrib_offsets = np.searchsorted(u_cluster, np.arange(n_cl + 1)).astype(np.int64)
    has = np.diff(contrib_offsets) > 0
    main_shower = np.full(n_cl, -1, dtype=np.int64)
    main_energy = np.zeros(n_cl)
    main_shower[has] = u_shower[contrib_offsets[:-1][has]]
    main_energy[has] = summed[contrib_offsets[:-1][has]]
    return Clusters(
        offsets=offsets,
        x=x,
        y=y,
        z=np.full(n_cl, float(calo.z_shower_max)),
        e=e,
        e_raw=e_raw,
        e_seed=e_seed,
        sxx=sxx,
        syy=syy,
        sxy=sxy,
        n_digits=n_digits,
        seed_cell=seed_cell,
        region=region.astype(np.int8),
        main_shower=main_shower,
        main_energy=main_energy,
        contrib_offsets=contrib_offsets,
        contrib_shower=u_shower.astype(np.int64),
        contrib_energy=summed,
    )
