"""The cells of a calorimeter as flat arrays: numbering, centres, sizes and neighbours.

A :class:`~lamarr_col.detector.conditions.Calorimeter` is a set of nested rectangular regions
of square cells (the ECAL: inner 40.4 mm, middle 60.6 mm, outer 121.2 mm); region k covers
its rectangle ±x_max × ±y_max minus the rectangle of region k − 1 (the first: minus the beam
hole). Each region is laid out as a full grid of ``ncol × nrow`` cell positions from its
lower-left corner (−x_max, −y_max); the positions inside the inner rectangle exist in the
numbering but are not cells (``valid`` false) and never see energy. Cell id:
``offset[k] + column · nrow[k] + row``. The grid of each region must tile its rectangle and
its inner rectangle exactly (checked).

Neighbours of a cell: the valid cells, other than itself, whose square overlaps the square
of side 3 × its own size centred on it (with the same sizes: the 8 cells around; across a
region boundary: the smaller or larger cells touching that 3 × 3 footprint). Stored as CSR
(``neighbour_offsets``, ``neighbour_index``), each row sorted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from lamarr_col.detector.conditions import Calorimeter
from lamarr_col.errors import ConfigError

__all__ = ["CaloGrid"]

_TILE_TOL = 1e-6  # relative: a region must hold a whole number of cells to this precision
_OVERLAP_TOL = 1e-6  # mm: squares that only touch at an edge or corner do not overlap


@dataclass(frozen=True, eq=False)
class CaloGrid:
    """Flat cell arrays of one calorimeter (module docstring). Per region (r,):
    ``region_cell`` (mm), ``region_x_max``, ``region_y_max``, ``region_inner_x``,
    ``region_inner_y`` (mm, half widths), ``region_ncol``, ``region_nrow``, and
    ``region_offset`` (r + 1,) the first cell id of each region."""

    name: str
    region_names: tuple[str, ...]
    region_cell: npt.NDArray[np.float64]
    region_x_max: npt.NDArray[np.float64]
    region_y_max: npt.NDArray[np.float64]
    region_inner_x: npt.NDArray[np.float64]
    region_inner_y: npt.NDArray[np.float64]
    region_ncol: npt.NDArray[np.int64]
    region_nrow: npt.NDArray[np.int64]
    region_offset: npt.NDArray[np.int64]

    @classmethod
    def from_calorimeter(cls, calo: Calorimeter) -> CaloGrid:
        """The grid of ``calo``; :class:`~lamarr_col.errors.ConfigError` when a region does
        not hold a whole number of its cells."""
        if not calo.regions:
            raise ConfigError(f"{calo.name}: no regions, so no cells")
        cell, xm, ym, ix, iy, nc, nr = [], [], [], [], [], [], []
        inner_x, inner_y = calo.hole_x, calo.hole_y
        for region in calo.regions:
            for what, half in (
                ("x_max", region.x_max),
                ("y_max", region.y_max),
                ("inner x", inner_x),
                ("inner y", inner_y),
            ):
                q = 2.0 * half / region.cell
                if abs(q - round(q)) > _TILE_TOL * max(q, 1.0):
                    raise ConfigError(
                        f"{calo.name}.regions.{region.name}: {what} ±{half} mm is not a whole "
                        f"number of {region.cell} mm cells ({q:.4f})"
                    )
            if not (region.x_max > inner_x and region.y_max > inner_y):
                raise ConfigError(
                    f"{calo.name}.regions.{region.name}: ±{region.x_max} × ±{region.y_max} mm "
                    f"does not enclose the region inside it (±{inner_x} × ±{inner_y} mm)"
                )
            cell.append(region.cell)
            xm.append(region.x_max)
            ym.append(region.y_max)
            ix.append(inner_x)
            iy.append(inner_y)
            nc.append(round(2.0 * region.x_max / region.cell))
            nr.append(round(2.0 * region.y_max / region.cell))
            inner_x, inner_y = region.x_max, region.y_max
        counts = np.array(nc, dtype=np.int64) * np.array(nr, dtype=np.int64)
        return cls(
            name=calo.name,
            region_names=tuple(r.name for r in calo.regions),
            region_cell=np.array(cell),
            region_x_max=np.array(xm),
            region_y_max=np.array(ym),
            region_inner_x=np.array(ix),
            region_inner_y=np.array(iy),
            region_ncol=np.array(nc, dtype=np.int64),
            region_nrow=np.array(nr, dtype=np.int64),
            region_offset=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )

    @property
    def n_cells(self) -> int:
        """Cell positions in the numbering (valid or not)."""
        return int(self.region_offset[-1])

    @cached_property
    def region(self) -> npt.NDArray[np.int8]:
        """Region of each cell id."""
        return np.repeat(
            np.arange(len(self.region_cell), dtype=np.int8), np.diff(self.region_offset)
        )

    @cached_property
    def size(self) -> npt.NDArray[np.float64]:
        """Side (mm) of each cell."""
        return self.region_cell[self.region]

    @cached_property
    def _column_row(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        local = np.arange(self.n_cells) - self.region_offset[self.region]
        nrow = self.region_nrow[self.region]
        return local // nrow, local % nrow

    @cached_property
    def x(self) -> npt.NDArray[np.float64]:
        """Centre x (mm) of each cell."""
        col, _ = self._column_row
        return -self.region_x_max[self.region] + (col + 0.5) * self.size

    @cached_property
    def y(self) -> npt.NDArray[np.float64]:
        """Centre y (mm) of each cell."""
        _, row = self._column_row
        return -self.region_y_max[self.region] + (row + 0.5) * self.size

    @cached_property
    def valid(self) -> npt.NDArray[np.bool_]:
        """Whether each cell id is a real cell (not inside its region's inner rectangle)."""
        inside = (np.abs(self.x) < self.region_inner_x[self.region]) & (
            np.abs(self.y) < self.region_inner_y[self.region]
        )
        return ~inside

    def cell_of(self, x: npt.ArrayLike, y: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Cell id at each point (x, y) (mm); −1 outside the calorimeter, in the beam hole or
        at a non-finite coordinate."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        out = np.full(np.broadcast(xa, ya).shape, -1, dtype=np.int64)
        xa, ya = np.broadcast_to(xa, out.shape), np.broadcast_to(ya, out.shape)
        with np.errstate(invalid="ignore"):
            ax, ay = np.abs(xa), np.abs(ya)
            for k in range(len(self.region_cell)):
                inside = (ax < self.region_x_max[k]) & (ay < self.region_y_max[k])
                inner = (ax < self.region_inner_x[k]) & (ay < self.region_inner_y[k])
                here = inside & ~inner & (out < 0)
                if not here.any():
                    continue
                c = self.region_cell[k]
                col = np.clip(
                    np.floor((xa[here] + self.region_x_max[k]) / c), 0, self.region_ncol[k] - 1
                )
                row = np.clip(
                    np.floor((ya[here] + self.region_y_max[k]) / c), 0, self.region_nrow[k] - 1
                )
                out[here] = self.region_offset[k] + col.astype(np.int64) * self.region_nrow[k] + row
        return out

    @cached_property
    def _neighbours(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        ids = np.flatnonzero(self.valid)
        x, y, s = self.x[ids], self.y[ids], self.size[ids]
        # sort by x so that each cell looks only at the cells within reach of its footprint
        order = np.argsort(x, kind="stable")
        xs = x[order]
        reach = 1.5 * s + 0.5 * s.max()
        lo = np.searchsorted(xs, x - reach, side="left")
        hi = np.searchsorted(xs, x + reach, side="right")
        rows: list[npt.NDArray[np.int64]] = []
        for k in range(len(ids)):
            cand = order[lo[k] : hi[k]]
            half = 1.5 * s[k] + 0.5 * s[cand] - _OVERLAP_TOL
            near = (np.abs(x[cand] - x[k]) < half) & (np.abs(y[cand] - y[k]) < half)
            near &= cand != k
            rows.append(np.sort(ids[cand[near]]))
        offsets = np.zeros(self.n_cells + 1, dtype=np.int64)
        counts = np.zeros(self.n_cells, dtype=np.int64)
        counts[ids] = [len(r) for r in rows]
        offsets[1:] = np.cumsum(counts)
        index = np.concatenate(rows) if rows else np.empty(0, dtype=np.int64)
        return offsets, index.astype(np.int64)

    @property
    def neighbour_offsets(self) -> npt.NDArray[np.int64]:
        """CSR offsets (n_cells + 1,) of the neighbour lists (invalid cells: none)."""
        return self._neighbours[0]

    @property
    def neighbour_index(self) -> npt.NDArray[np.int64]:
        """CSR neighbour cell ids, each cell's row sorted."""
        return self._neighbours[1]

    def describe(self) -> str:
        """One line per region: cell size, grid and number of real cells."""
        lines = []
        for k, name in enumerate(self.region_names):
            a, b = self.region_offset[k], self.region_offset[k + 1]
            n_valid = int(self.valid[a:b].sum())
            lines.append(
                f"{self.name} {name}: {self.region_cell[k]:g} mm cells, "
                f"{self.region_ncol[k]} × {self.region_nrow[k]} grid, {n_valid} cells"
            )
        return "\n".join(lines)
