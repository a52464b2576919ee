"""Interactions with one thin layer of material, for the detailed simulation.

Buffers, float64, C-contiguous (``out`` may be the same array as ``states``):
    states      (n, 6)   x, y, z (mm), tx, ty, qop (e/MeV); rows are at the layer
    charge      (n,)     charge (e); rows with charge 0 are left unchanged by charged processes
    mass        (n,)     mass (MeV)
    material    (10,)    one row of the layout ``MATERIAL_FIELDS`` (see lamarr_col.detailed.materials)
    normals     (n, 4)   pre-drawn standard normals
    uniforms    (n,) or (n, k)   pre-drawn uniforms in [0, 1)
A layer is perpendicular to z; its thickness (mm, g/cm² or fractions x/X0, x/λI) is given at
normal incidence and every process scales it by the path factor N = √(1 + tx² + ty²).
Kernels never draw random numbers. Sources: PDG Review of Particle Physics (2024), "Passage of
particles through matter" (eqs. 34.5–34.7 Bethe, 34.11–34.12 Landau, 34.15–34.20 multiple
scattering, 34.29–34.31 pair production; numbers as in the 2022/2024 editions), Bethe & Heitler,
Proc. R. Soc. A 146 (1934) 83 for the radiated fraction, and Marsaglia & Tsang, ACM TOMS 26
(2000) 363 for the gamma variate.

multiple_scattering: Highland θ0 = 13.6 MeV/(βcp)·|z|·√t·(1 + 0.038·ln(t·z²/β²)), t = N·x/X0
    (floored at 0). In the frame (e1, e2, u) around the direction u, with e1 in the x–z plane,
    the projected angles are θ_i = θ0·g_{2i} and the displacements at the exit
    d_i = L·θ0·(g_{2i+1}/√12 + g_{2i}/2), L = N·thickness (correlation √3/2, PDG eq. 34.20).
    The new direction is ∝ u + tanθ1·e1 + tanθ2·e2; the displacement is carried back onto the
    state's z plane along it. |p| (qop) and z are kept. The state must be at the exit face.
energy_loss: Bethe mean rate with the Sternheimer density correction (eqs. 34.5, 34.7; the
    heavy-particle formula, also used for electrons, where it is only approximate);
    fluctuations Landau: ΔE = Δp + ξ·λ(u), Δp and ξ from eqs. 34.11–34.12 (j = 0.200) and λ(u)
    a quantile table of the Landau variable in units of ξ about its mode
    (``landau_table`` of lamarr_col.detailed.materials: entry k at u = (k + ½)/m, linear
    interpolation, so the tail is truncated at u = 1 − 1/(2m)). ΔE is kept in [0, T]; a
    particle that loses all its kinetic energy stops: its qop becomes NaN.
bremsstrahlung: Bethe–Heitler, z = E′/E with −ln z ~ Gamma(c = t/ln 2) so ⟨z⟩ = e^{−t}; the gamma
    variate is Marsaglia–Tsang for shape c + 1 (normals by Box–Muller) times U^{1/c}, from
    ``BREM_UNIFORMS`` uniforms: col 0 for U, cols 1 + 3j … 3 + 3j for attempt j of
    ``BREM_ATTEMPTS`` (each accepted with probability > 0.95; if all are rejected the variate
    falls back to the mode-like d·U^{1/c}, with probability < 1e-6). The photon (energy out)
    goes along the electron; an electron left below its mass stops (qop NaN).
photon_conversion: probability 1 − exp(−(7/9)·t) (eq. 34.30), only above 2mₑ; the positron
    takes x = E+/Eγ from the complete-screening Bethe–Heitler shape 1 − (4/3)x(1 − x)
    (eq. 34.31, inverse CDF by Newton), rescaled to [mₑ/Eγ, 1 − mₑ/Eγ]; both go along the photon.
hadronic_interaction: probability 1 − exp(−N·x/λI), one λI for all hadrons (no species scaling).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

__all__ = [
    "BREM_ATTEMPTS",
    "BREM_UNIFORMS",
    "ELECTRON_MASS",
    "K_BETHE",
    "MATERIAL_FIELDS",
    "bethe_dedx",
    "bremsstrahlung",
    "bremsstrahlung_reference",
    "density_correction",
    "energy_loss",
    "energy_loss_reference",
    "hadronic_interaction",
    "hadronic_interaction_reference",
    "highland_theta0",
    "landau_most_probable",
    "landau_xi",
    "mean_energy_loss",
    "mean_energy_loss_reference",
    "multiple_scattering",
    "multiple_scattering_reference",
    "photon_conversion",
    "photon_conversion_reference",
]

#: Layout of a material row: Z/A (mol/g), density (g/cm³), mean excitation energy I (MeV),
#: radiation length X0 (g/cm²), Sternheimer C̄, X0, X1, a, k, δ0 (PDG eq. 34.7).
MATERIAL_FIELDS = (
    "z_over_a",
    "density",
    "mean_excitation",
    "radiation_length",
    "c_bar",
    "x0",
    "x1",
    "a",
    "k",
    "delta0",
)

ELECTRON_MASS = 0.51099895  # MeV
K_BETHE = 0.307075  # 4π N_A rₑ² mₑc², MeV mol⁻¹ cm²
J_LANDAU = 0.200  # PDG eq. 34.12
BREM_ATTEMPTS = 5
BREM_UNIFORMS = 1 + 3 * BREM_ATTEMPTS
_LN10 = math.log(10.0)


@nb.njit(cache=True, inline="always")
def _path_factor(tx: float, ty: float) -> float:
    return math.sqrt(1.0 + tx * tx + ty * ty)


@nb.njit(cache=True)
def highland_theta0(p: float, beta: float, charge: float, t: float) -> float:
    """Highland θ0 (rad) for momentum ``p`` (MeV), velocity β, ``charge`` (e), path t = x/X0."""
    if t <= 0.0 or charge == 0.0:
        return 0.0
    z2 = charge * charge
    corr = max(1.0 + 0.038 * math.log(t * z2 / (beta * beta)), 0.0)
    return 13.6 / (beta * p) * abs(charge) * math.sqrt(t) * corr


@nb.njit(cache=True)
def density_correction(beta_gamma: float, material: np.ndarray) -> float:
    """Sternheimer density-effect correction δ(βγ) (PDG eq. 34.7)."""
    x = math.log10(beta_gamma)
    c_bar, x0, x1, a, k, delta0 = (
        material[4],
        material[5],
        material[6],
        material[7],
        material[8],
        material[9],
    )
    if x >= x1:
        return 2.0 * _LN10 * x - c_bar
    if x >= x0:
        return 2.0 * _LN10 * x - c_bar + a * (x1 - x) ** k
    return delta0 * 10.0 ** (2.0 * (x - x0))


@nb.njit(cache=True)
def bethe_dedx(beta_gamma: float, mass: float, charge: float, material: np.ndarray) -> float:
    """Mean stopping power −⟨dE/dx⟩ (MeV cm²/g) of a heavy particle (PDG eq. 34.5, with δ)."""
    bg2 = beta_gamma * beta_gamma
    gamma = math.sqrt(1.0 + bg2)
    beta2 = bg2 / (1.0 + bg2)
    ratio = ELECTRON_MASS / mass
    w_max = 2.0 * ELECTRON_MASS * bg2 / (1.0 + 2.0 * gamma * ratio + ratio * ratio)
    i = material[2]
    log_term = 0.5 * math.log(2.0 * ELECTRON_MASS * bg2 * w_max / (i * i))
    delta = density_correction(beta_gamma, material)
    return K_BETHE * charge * charge * material[0] / beta2 * (log_term - beta2 - 0.5 * delta)


@nb.njit(cache=True)
def landau_xi(beta_gamma: float, charge: float, thickness: float, material: np.ndarray) -> float:
    """Landau width ξ = (K/2)·(Z/A)·z²·x/β² (MeV) for ``thickness`` x (g/cm²)."""
    beta2 = beta_gamma * beta_gamma / (1.0 + beta_gamma * beta_gamma)
    return 0.5 * K_BETHE * material[0] * charge * charge * thickness / beta2


@nb.njit(cache=True)
def landau_most_probable(
    beta_gamma: float, charge: float, thickness: float, material: np.ndarray
) -> float:
    """Most probable energy loss Δp (MeV) in ``thickness`` (g/cm²) (PDG eq. 34.12)."""
    bg2 = beta_gamma * beta_gamma
    beta2 = bg2 / (1.0 + bg2)
    xi = landau_xi(beta_gamma, charge, thickness, material)
    i = material[2]
    delta = density_correction(beta_gamma, material)
    return xi * (
        math.log(2.0 * ELECTRON_MASS * bg2 / i) + math.log(xi / i) + J_LANDAU - beta2 - delta
    )


@nb.njit(cache=True, parallel=True)
def multiple_scattering(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    x_over_x0: float,
    thickness: float,
    normals: np.ndarray,
    out: np.ndarray,
) -> None:
    """Scatter ``states`` through a layer (x/X0, thickness in mm) into ``out`` (n, 6)."""
    for i in nb.prange(states.shape[0]):
        x, y, z, tx, ty, qop = (
            states[i, 0], states[i, 1], states[i, 2], states[i, 3], states[i, 4], states[i, 5]
        )  # fmt: skip
        out[i, 0], out[i, 1], out[i, 2], out[i, 3], out[i, 4], out[i, 5] = x, y, z, tx, ty, qop
        if charge[i] == 0.0 or qop == 0.0 or x_over_x0 <= 0.0:
            continue
        p = abs(charge[i] / qop)
        beta = p / math.sqrt(p * p + mass[i] * mass[i])
        nf = _path_factor(tx, ty)
        theta0 = highland_theta0(p, beta, charge[i], x_over_x0 * nf)
        length = thickness * nf
        th1 = theta0 * normals[i, 0]
        th2 = theta0 * normals[i, 2]
        d1 = length * theta0 * (normals[i, 1] / math.sqrt(12.0) + 0.5 * normals[i, 0])
        d2 = length * theta0 * (normals[i, 3] / math.sqrt(12.0) + 0.5 * normals[i, 2])
        ux, uy, uz = tx / nf, ty / nf, 1.0 / nf
        h = math.sqrt(ux * ux + uz * uz)
        e1x, e1z = uz / h, -ux / h  # e1 = (uz, 0, −ux)/h
        e2x, e2y, e2z = -ux * uy / h, h, -uy * uz / h  # e2 = u × e1
        t1, t2 = math.tan(th1), math.tan(th2)
        wx = ux + t1 * e1x + t2 * e2x
        wy = uy + t2 * e2y
        wz = uz + t1 * e1z + t2 * e2z
        if wz <= 0.0:  # scattered backwards: cannot be followed in z
            out[i, 0], out[i, 1], out[i, 3], out[i, 4] = np.nan, np.nan, np.nan, np.nan
            continue
        ntx, nty = wx / wz, wy / wz
        dx = d1 * e1x + d2 * e2x
        dy = d2 * e2y
        dz = d1 * e1z + d2 * e2z
        out[i, 0] = x + dx - dz * ntx
        out[i, 1] = y + dy - dz * nty
        out[i, 3] = ntx
        out[i, 4] = nty


@nb.njit(cache=True, parallel=True)
def mean_energy_loss(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    thickness: float,
    material: np.ndarray,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (n,) with the Bethe mean energy loss (MeV) in ``thickness`` (g/cm²)."""
    for i in nb.prange(states.shape[0]):
        qop = states[i, 5]
        if charge[i] == 0.0 or qop == 0.0:
            out[i] = 0.0
            continue
        bg = abs(charge[i] / qop) / mass[i]
        path = thickness * _path_factor(states[i, 3], states[i, 4])
        out[i] = bethe_dedx(bg, mass[i], charge[i], material) * path


@nb.njit(cache=True, inline="always")
def _table_quantile(table: np.ndarray, u: float) -> float:
    m = table.shape[0]
    s = u * m - 0.5
    if s <= 0.0:
        return table[0]
    if s >= m - 1:
        return table[m - 1]
    k = int(s)
    f = s - k
    return table[k] + f * (table[k + 1] - table[k])


@nb.njit(cache=True, parallel=True)
def energy_loss(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    thickness: float,
    material: np.ndarray,
    uniforms: np.ndarray,
    landau_table: np.ndarray,
    out: np.ndarray,
    delta: np.ndarray,
) -> None:
    """Landau-sampled loss in ``thickness`` (g/cm²): ``delta`` (n,) MeV, ``out`` (n, 6) new qop."""
    for i in nb.prange(states.shape[0]):
        for c in range(6):
            out[i, c] = states[i, c]
        qop = states[i, 5]
        delta[i] = 0.0
        if charge[i] == 0.0 or qop == 0.0 or thickness <= 0.0:
            continue
        m = mass[i]
        p = abs(charge[i] / qop)
        energy = math.sqrt(p * p + m * m)
        bg = p / m
        path = thickness * _path_factor(states[i, 3], states[i, 4])
        xi = landau_xi(bg, charge[i], path, material)
        mpv = landau_most_probable(bg, charge[i], path, material)
        loss = min(max(mpv + xi * _table_quantile(landau_table, uniforms[i]), 0.0), energy - m)
        delta[i] = loss
        e_after = energy - loss
        p_after = math.sqrt(max(e_after * e_after - m * m, 0.0))
        out[i, 5] = math.copysign(1.0, qop) * abs(charge[i]) / p_after if p_after > 0.0 else np.nan


@nb.njit(cache=True)
def _gamma_variate(shape: float, u: np.ndarray) -> float:
    """Gamma(shape) from ``BREM_UNIFORMS`` uniforms (Marsaglia–Tsang on shape + 1, boosted)."""
    d = shape + 1.0 - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    boost = (1.0 - u[0]) ** (1.0 / shape)
    for j in range(BREM_ATTEMPTS):
        g = math.sqrt(-2.0 * math.log(1.0 - u[1 + 3 * j])) * math.cos(2.0 * math.pi * u[2 + 3 * j])
        v = 1.0 + c * g
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(1.0 - u[3 + 3 * j]) < 0.5 * g * g + d - d * v + d * math.log(v):
            return d * v * boost
    return d * boost


@nb.njit(cache=True, parallel=True)
def bremsstrahlung(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    x_over_x0: float,
    uniforms: np.ndarray,
    out: np.ndarray,
    photon: np.ndarray,
) -> None:
    """Radiate through x/X0: ``out`` (n, 6) new qop, ``photon`` (n,) photon energy (MeV)."""
    for i in nb.prange(states.shape[0]):
        for c in range(6):
            out[i, c] = states[i, c]
        photon[i] = 0.0
        qop = states[i, 5]
        if charge[i] == 0.0 or qop == 0.0 or x_over_x0 <= 0.0:
            continue
        m = mass[i]
        p = abs(charge[i] / qop)
        energy = math.sqrt(p * p + m * m)
        t = x_over_x0 * _path_factor(states[i, 3], states[i, 4])
        frac = math.exp(-_gamma_variate(t / math.log(2.0), uniforms[i]))
        e_after = max(frac * energy, m)
        photon[i] = energy - e_after
        p_after = math.sqrt(max(e_after * e_after - m * m, 0.0))
        out[i, 5] = math.copysign(1.0, qop) * abs(charge[i]) / p_after if p_after > 0.0 else np.nan


@nb.njit(cache=True, inline="always")
def _pair_fraction(u: float) -> float:
    """x with CDF (9/7)(x − (2/3)x² + (4/9)x³) = u, by Newton from x = u."""
    x = u
    for _ in range(12):
        f = 9.0 / 7.0 * (x - 2.0 / 3.0 * x * x + 4.0 / 9.0 * x * x * x) - u
        df = 9.0 / 7.0 * (1.0 - 4.0 / 3.0 * x + 4.0 / 3.0 * x * x)
        x = min(max(x - f / df, 0.0), 1.0)
    return x


@nb.njit(cache=True, parallel=True)
def photon_conversion(
    states: np.ndarray,
    energy: np.ndarray,
    x_over_x0: float,
    uniforms: np.ndarray,
    positron: np.ndarray,
    electron: np.ndarray,
    converted: np.ndarray,
) -> None:
    """Convert photons (energy (n,) MeV) with uniforms (n, 2): pair states (n, 6), flag (n,)."""
    for i in nb.prange(states.shape[0]):
        for c in range(5):
            positron[i, c] = states[i, c]
            electron[i, c] = states[i, c]
        positron[i, 5] = np.nan
        electron[i, 5] = np.nan
        e = energy[i]
        t = x_over_x0 * _path_factor(states[i, 3], states[i, 4])
        converted[i] = e > 2.0 * ELECTRON_MASS and uniforms[i, 0] < -math.expm1(-7.0 / 9.0 * t)
        if not converted[i]:
            continue
        x_min = ELECTRON_MASS / e
        e_plus = (x_min + (1.0 - 2.0 * x_min) * _pair_fraction(uniforms[i, 1])) * e
        e_minus = e - e_plus
        p_plus = math.sqrt(max(e_plus * e_plus - ELECTRON_MASS * ELECTRON_MASS, 0.0))
        p_minus = math.sqrt(max(e_minus * e_minus - ELECTRON_MASS * ELECTRON_MASS, 0.0))
        positron[i, 5] = 1.0 / p_plus if p_plus > 0.0 else np.nan
        electron[i, 5] = -1.0 / p_minus if p_minus > 0.0 else np.nan


@nb.njit(cache=True, parallel=True)
def hadronic_interaction(
    states: np.ndarray, lambda_i: float, uniforms: np.ndarray, interacted: np.ndarray
) -> None:
    """Flag in ``interacted`` (n,) the particles stopped by a layer of x/λI = ``lambda_i``."""
    for i in nb.prange(states.shape[0]):
        path = lambda_i * _path_factor(states[i, 3], states[i, 4])
        interacted[i] = uniforms[i] < -math.expm1(-path)


# ---- plain-Python twins (term by term, math only), for the property tests ----------------------


def _density_correction_reference(bg: float, mat: list[float]) -> float:
    x = math.log10(bg)
    if x >= mat[6]:
        return 2.0 * math.log(10.0) * x - mat[4]
    if x >= mat[5]:
        return 2.0 * math.log(10.0) * x - mat[4] + mat[7] * (mat[6] - x) ** mat[8]
    return mat[9] * 10.0 ** (2.0 * (x - mat[5]))


def _bethe_reference(bg: float, mass: float, charge: float, mat: list[float]) -> float:
    gamma = math.sqrt(1.0 + bg * bg)
    beta2 = (bg / gamma) ** 2
    w_max = (
        2
        * ELECTRON_MASS
        * bg**2
        / (1 + 2 * gamma * ELECTRON_MASS / mass + (ELECTRON_MASS / mass) ** 2)
    )
    bracket = 0.5 * math.log(2 * ELECTRON_MASS * bg**2 * w_max / mat[2] ** 2) - beta2
    bracket -= 0.5 * _density_correction_reference(bg, mat)
    return K_BETHE * charge**2 * mat[0] / beta2 * bracket


def _landau_reference(bg: float, charge: float, x: float, mat: list[float]) -> tuple[float, float]:
    """(ξ, Δp) in MeV for x g/cm²."""
    beta2 = bg**2 / (1.0 + bg**2)
    xi = K_BETHE / 2 * mat[0] * charge**2 * x / beta2
    log_terms = math.log(2 * ELECTRON_MASS * bg**2 / mat[2]) + math.log(xi / mat[2])
    return xi, xi * (log_terms + J_LANDAU - beta2 - _density_correction_reference(bg, mat))


def multiple_scattering_reference(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    x_over_x0: float,
    thickness: float,
    normals: np.ndarray,
) -> np.ndarray:
    """Plain-Python twin of :func:`multiple_scattering` (rotation by vectors); returns (n, 6)."""
    out = np.array(states, dtype=float, copy=True)
    for i, (x, y, z, tx, ty, qop) in enumerate(states.tolist()):
        q = float(charge[i])
        if q == 0.0 or qop == 0.0 or x_over_x0 <= 0.0:
            continue
        p = abs(q / qop)
        beta = p / math.hypot(p, float(mass[i]))
        nf = math.sqrt(1.0 + tx * tx + ty * ty)
        t = x_over_x0 * nf
        theta0 = 13.6 / (beta * p) * abs(q) * math.sqrt(t)
        theta0 *= max(1.0 + 0.038 * math.log(t * q * q / beta**2), 0.0)
        g0, g1, g2, g3 = normals[i].tolist()
        u = np.array([tx, ty, 1.0]) / nf
        e1 = np.cross([0.0, 1.0, 0.0], u)  # horizontal, ⊥ u
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(u, e1)
        w = u + math.tan(theta0 * g0) * e1 + math.tan(theta0 * g2) * e2
        if w[2] <= 0.0:
            out[i, [0, 1, 3, 4]] = np.nan
            continue
        length = thickness * nf
        shift = (
            length
            * theta0
            * ((g1 / math.sqrt(12) + g0 / 2) * e1 + (g3 / math.sqrt(12) + g2 / 2) * e2)
        )
        end = np.array([x, y, z]) + shift - shift[2] / w[2] * w
        out[i, 0], out[i, 1] = end[0], end[1]
        out[i, 3], out[i, 4] = w[0] / w[2], w[1] / w[2]
    return out


def mean_energy_loss_reference(
    states: np.ndarray, charge: np.ndarray, mass: np.ndarray, thickness: float, material: np.ndarray
) -> np.ndarray:
    """Plain-Python twin of :func:`mean_energy_loss`; returns (n,) MeV."""
    mat = material.tolist()
    out = np.zeros(len(states))
    for i, (_, _, _, tx, ty, qop) in enumerate(states.tolist()):
        if charge[i] != 0.0 and qop != 0.0:
            bg = abs(charge[i] / qop) / mass[i]
            path = thickness * math.sqrt(1 + tx * tx + ty * ty)
            out[i] = _bethe_reference(bg, mass[i], charge[i], mat) * path
    return out


def energy_loss_reference(
    states: np.ndarray,
    charge: np.ndarray,
    mass: np.ndarray,
    thickness: float,
    material: np.ndarray,
    uniforms: np.ndarray,
    landau_table: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python twin of :func:`energy_loss`; returns (new states (n, 6), loss (n,) MeV)."""
    mat = material.tolist()
    m_table = len(landau_table)
    nodes = (np.arange(m_table) + 0.5) / m_table
    out = np.array(states, dtype=float, copy=True)
    delta = np.zeros(len(states))
    for i, (_, _, _, tx, ty, qop) in enumerate(states.tolist()):
        q, m = float(charge[i]), float(mass[i])
        if q == 0.0 or qop == 0.0 or thickness <= 0.0:
            continue
        p = abs(q / qop)
        energy = math.hypot(p, m)
        xi, mpv = _landau_reference(p / m, q, thickness * math.sqrt(1 + tx * tx + ty * ty), mat)
        lam = float(np.interp(uniforms[i], nodes, landau_table))
        delta[i] = min(max(mpv + xi * lam, 0.0), energy - m)
        p_after = math.sqrt(max((energy - delta[i]) ** 2 - m * m, 0.0))
        out[i, 5] = math.copysign(abs(q) / p_after, qop) if p_after > 0 else math.nan
    return out, delta


def _gamma_variate_reference(shape: float, u: list[float]) -> float:
    d = shape + 1.0 - 1.0 / 3.0  # the kernel's rounding: accept/reject must agree exactly
    c = 1.0 / math.sqrt(9.0 * d)
    boost = (1.0 - u[0]) ** (1.0 / shape)
    for j in range(BREM_ATTEMPTS):
        u1, u2, u3 = u[1 + 3 * j : 4 + 3 * j]
        g = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)
        v = 1.0 + c * g
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(1.0 - u3) < 0.5 * g * g + d - d * v + d * math.log(v):
            return d * v * boost
    return d * boost


def bremsstrahlung_reference(
    states: np.ndarray, charge: np.ndarray, mass: np.ndarray, x_over_x0: float, uniforms: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Plain-Python twin of :func:`bremsstrahlung`; returns (new states (n, 6), photon (n,) MeV)."""
    out = np.array(states, dtype=float, copy=True)
    photon = np.zeros(len(states))
    for i, (_, _, _, tx, ty, qop) in enumerate(states.tolist()):
        q, m = float(charge[i]), float(mass[i])
        if q == 0.0 or qop == 0.0 or x_over_x0 <= 0.0:
            continue
        energy = math.hypot(q / qop, m)
        shape = x_over_x0 * math.sqrt(1 + tx * tx + ty * ty) / math.log(2.0)
        e_after = max(math.exp(-_gamma_variate_reference(shape, uniforms[i].tolist())) * energy, m)
        photon[i] = energy - e_after
        p_after = math.sqrt(max(e_after**2 - m * m, 0.0))
        out[i, 5] = math.copysign(abs(q) / p_after, qop) if p_after > 0 else math.nan
    return out, photon


def _pair_fraction_reference(u: float) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(80):  # bisection on the CDF
        mid = 0.5 * (lo + hi)
        if 9 / 7 * (mid - 2 / 3 * mid**2 + 4 / 9 * mid**3) < u:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def photon_conversion_reference(
    states: np.ndarray, energy: np.ndarray, x_over_x0: float, uniforms: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python twin of :func:`photon_conversion`; returns (positron, electron, converted)."""
    n = len(states)
    pair = [np.array(states, dtype=float, copy=True) for _ in range(2)]
    for s in pair:
        s[:, 5] = np.nan
    converted = np.zeros(n, dtype=bool)
    for i, (_, _, _, tx, ty, _) in enumerate(states.tolist()):
        e = float(energy[i])
        prob = -math.expm1(-7 / 9 * x_over_x0 * math.sqrt(1 + tx * tx + ty * ty))
        if e <= 2 * ELECTRON_MASS or not uniforms[i, 0] < prob:
            continue
        converted[i] = True
        x_min = ELECTRON_MASS / e
        e_plus = (x_min + (1 - 2 * x_min) * _pair_fraction_reference(uniforms[i, 1])) * e
        for s, e_lep, sign in ((pair[0], e_plus, 1.0), (pair[1], e - e_plus, -1.0)):
            p = math.sqrt(max(e_lep**2 - ELECTRON_MASS**2, 0.0))
            s[i, 5] = sign / p if p > 0 else math.nan
    return pair[0], pair[1], converted


def hadronic_interaction_reference(
    states: np.ndarray, lambda_i: float, uniforms: np.ndarray
) -> np.ndarray:
    """Plain-Python twin of :func:`hadronic_interaction`; returns the flags (n,)."""
    n_factor = np.sqrt(1.0 + states[:, 3] ** 2 + states[:, 4] ** 2)
    return np.asarray(uniforms) < -np.expm1(-lambda_i * n_factor)
