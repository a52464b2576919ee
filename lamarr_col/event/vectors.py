"""`vector` views of event-model collections, on request.

The views carry vector's behaviour on the returned arrays only; the global ``ak.behavior`` is
never touched, so importing lamarr_col changes nothing for other code in the session.
"""

from __future__ import annotations

import awkward as ak

__all__ = ["momenta", "origins"]


def _behavior() -> dict:
    import vector

    return dict(vector.backends.awkward.behavior)


def momenta(particles: ak.Array) -> ak.Array:
    """Momentum4D view (px, py, pz, E in MeV) of a collection such as ``events.mcparticles``."""
    return ak.zip(
        {"px": particles.px, "py": particles.py, "pz": particles.pz, "E": particles.e},
        with_name="Momentum4D",
        behavior=_behavior(),
    )


def origins(particles: ak.Array) -> ak.Array:
    """Vector4D view (x, y, z in mm, t in ns) of the origin vertices of a collection."""
    return ak.zip(
        {"x": particles.vx, "y": particles.vy, "z": particles.vz, "t": particles.vt},
        with_name="Vector4D",
        behavior=_behavior(),
    )
