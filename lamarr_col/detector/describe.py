"""A readable summary of a condition set (``lamarr-col conditions show``)."""

from __future__ import annotations

import math

import numpy as np

from lamarr_col.detector.conditions import ConditionSet, Layer

__all__ = ["describe"]

_MASSES = {"pi": 139.57039, "K": 493.677, "p": 938.27209}  # MeV (PDG)


def _zs(layers: tuple[Layer, ...]) -> str:
    zs = [f"{layer.z:g}" for layer in layers]
    if len(zs) > 8:
        zs = [*zs[:4], "…", *zs[-3:]]
    return ", ".join(zs)


def _area(layer: Layer) -> str:
    if np.isfinite(layer.r_max):
        return f"r {layer.r_min:g}–{layer.r_max:g}"
    hole = f", hole ±{layer.hole_x:g} × ±{layer.hole_y:g}" if layer.hole_x or layer.hole_y else ""
    return f"±{layer.x_max:g} × ±{layer.y_max:g}{hole}"


def describe(conditions: ConditionSet) -> str:
    """A multi-line text summary: sub-detectors, field, RICH, calorimeters, muon, beam."""
    c = conditions
    lines = [f"Condition set {c.name} ({c.polarity})"]
    if c.description:
        lines.append(f"  {c.description}")
    if c.source:
        lines.append(f"  from {c.source}")
    lines.append("Tracking (z in mm; area, resolution in mm; material per layer):")
    for t in c.trackers:
        first = t.layers[0]
        same = all(
            (layer.x0, layer.resolution, layer.efficiency)
            == (first.x0, first.resolution, first.efficiency)
            for layer in t.layers
        )
        lines.append(f"  {t.name:<6} [{t.group}] {len(t.layers)} layers at z = {_zs(t.layers)}")
        lines.append(f"         area {_area(first)}")
        if same:
            lines.append(
                f"         {first.x0:.2%} X0, {first.lambda_i:.2%} λI, "
                f"σ {first.resolution * 1000:g} µm, efficiency {first.efficiency:.1%}"
            )
        else:
            for layer in t.layers:
                lines.append(
                    f"         {layer.name} z {layer.z:g}: {layer.x0:.2%} X0, "
                    f"σ {layer.resolution * 1000:g} µm, efficiency {layer.efficiency:.1%}"
                )
    if c.rf_foil is not None:
        rf = c.rf_foil
        lines.append(
            f"RF foil: cylinder r = {rf.radius:g} mm, z {rf.z_min:g}–{rf.z_max:g} mm, "
            f"{rf.thickness * 1000:g} µm Al ({rf.x0:.2%} X0 at normal incidence, "
            f"{rf.x0 / math.tan(0.05):.1%} X0 at 50 mrad from the beam)"
        )
    f, m = c.field, c.magnet
    peak = f.by[np.argmax(np.abs(f.by))]
    lines.append(
        f"Magnet: {m.source} field, ∫B_y dl = {f.integral() / 1000:.3f} T·m, "
        f"peak B_y = {peak:.3f} T at z = {f.z[np.argmax(np.abs(f.by))]:g} mm"
    )
    if m.parameters:
        lines.append("  " + ", ".join(f"{k} = {v:g}" for k, v in m.parameters.items()))
    lines.append(
        f"  aperture ±{m.tx_max * 1000:g} × ±{m.ty_max * 1000:g} mrad, "
        f"planes at z = {m.z_entrance:g} and {m.z_exit:g} mm"
    )
    for r in c.riches:
        lines.append(
            f"{r.name}: z {r.z_min:g}–{r.z_max:g} mm, {r.tx_min * 1000:g}–{r.tx_max * 1000:g} × "
            f"{r.ty_min * 1000:g}–{r.ty_max * 1000:g} mrad, {r.x0:.1%} X0"
        )
        for rad in r.radiators:
            thresholds = ", ".join(
                f"{k} {rad.threshold(mass) / 1000:.1f}" for k, mass in _MASSES.items()
            )
            lines.append(
                f"  {rad.name}: n = {rad.n:g}, {rad.length:g} mm; thresholds (GeV) {thresholds}"
            )
    for calo in (c.ecal, c.hcal):
        lines.append(
            f"{calo.name}: front z {calo.z_front:g}, shower max {calo.z_shower_max:g}, "
            f"depth {calo.depth:g} mm, {calo.x0:g} X0, {calo.lambda_i:g} λI; "
            f"±{calo.x_max:g} × ±{calo.y_max:g}, hole ±{calo.hole_x:g} × ±{calo.hole_y:g}"
        )
        lines.append(
            f"  σE/E = {calo.stochastic:.0%}/√E ⊕ {calo.constant:.1%}; cells "
            + ", ".join(
                f"{r.name} {r.cell:g} mm (≈ {n:.0f})"
                for r, n in zip(calo.regions, calo.cell_counts().values(), strict=True)
            )
        )
    lines.append("Muon stations (z mm; R1 pad x × y mm):")
    for s in c.muon_stations:
        lines.append(
            f"  {s.name}: z {s.z:g}, ±{s.x_max:.0f} × ±{s.y_max:.0f}, "
            f"hole ±{s.hole_x:.0f} × ±{s.hole_y:.0f}, pad {s.pad_x[0]:g} × {s.pad_y[0]:g}, "
            f"efficiency {s.efficiency:.1%}"
        )
    for a in c.absorbers:
        lines.append(
            f"  filter {a.name}: z {a.z:g}, {a.thickness:g} mm iron ({a.x0:.1f} X0, "
            f"{a.lambda_i:.2f} λI)"
        )
    lr = c.luminous_region
    lines.append(
        f"Luminous region: centre ({lr.x:g}, {lr.y:g}, {lr.z:g}) mm, σ = ({lr.sigma_x:g}, "
        f"{lr.sigma_y:g}, {lr.sigma_z:g}) mm, σt = {lr.sigma_t:g} ns"
    )
    kind = "fixed" if c.pileup.fixed else "Poisson, ≥ 1"
    lines.append(f"Pile-up: ν = {c.pileup.nu:g} collisions per crossing ({kind})")
    n_planes = len(c.planes()["z"])
    lines.append(f"{n_planes} planes; single-kick table: {len(c.single_kick)} entries")
    return "\n".join(lines)
