"""Where and when collisions happen: the luminous region and the pile-up distribution.

Defaults (Run 3 conditions):
- pile-up ν = 7.6 visible pp collisions per crossing at 2×10³³ cm⁻²s⁻¹ (LHCb Upgrade I
  framework TDR, LHCb-TDR-012); the number of collisions in a crossing is Poisson(ν) conditioned
  on at least one collision, as crossings without a collision are not recorded;
- luminous region σx = σy = 0.035 mm and σz = 60 mm, centred on the origin (values used by
  LHCb fast-simulation peers); σt = 0.18 ns (derived: a 75 mm bunch length gives
  σz/(√2 c) for the collision time of two head-on bunches).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from lamarr_col.rng import EventKeys, poisson_from_uniform

__all__ = ["RUN2_PILEUP", "RUN3_PILEUP", "LuminousRegion", "PileUp"]

RUN3_PILEUP = 7.6
RUN2_PILEUP = 1.1


@dataclass(frozen=True)
class LuminousRegion:
    """Gaussian luminous region (mm, ns)."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    t: float = 0.0
    sigma_x: float = 0.035
    sigma_y: float = 0.035
    sigma_z: float = 60.0
    sigma_t: float = 0.18

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value):
                msg = f"luminous region {name} must be finite, got {value}"
                raise ValueError(msg)
            if name.startswith("sigma") and value < 0:
                msg = f"luminous region {name} must be >= 0, got {value}"
                raise ValueError(msg)

    def sample(
        self, keys: EventKeys, events: npt.NDArray[np.uint64], collisions: npt.NDArray[np.int64]
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Collision vertices (x, y, z, t) for collision ``collisions[i]`` of ``events[i]``."""
        c = np.asarray(collisions, dtype=np.uint64) * np.uint64(4)
        out = {}
        for j, axis in enumerate("xyzt"):
            g = keys.normal("luminous_region", events, c + np.uint64(j))
            out[axis] = getattr(self, axis) + getattr(self, f"sigma_{axis}") * g
        return out


@dataclass(frozen=True)
class PileUp:
    """Number of pp collisions per crossing: Poisson(nu) given at least one (or fixed)."""

    nu: float = RUN3_PILEUP
    fixed: bool = False

    def __post_init__(self) -> None:
        if not np.isfinite(self.nu) or self.nu <= 0 or self.nu > 100:
            msg = f"pile-up nu must be in (0, 100], got {self.nu}"
            raise ValueError(msg)
        if self.fixed and self.nu != int(self.nu):
            msg = f"a fixed number of collisions must be an integer, got {self.nu}"
            raise ValueError(msg)

    def sample(self, keys: EventKeys, events: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Collisions in each crossing (≥ 1)."""
        events = np.asarray(events, dtype=np.uint64)
        if self.fixed:
            return np.full(events.shape, int(self.nu), dtype=np.int64)
        # inverse CDF of the zero-truncated Poisson: map u into (P(0), 1)
        u = keys.uniform("pileup", events, 0)
        p0 = np.exp(-self.nu)
        u = p0 + u * (1.0 - p0)
        return poisson_from_uniform(u, self.nu)
