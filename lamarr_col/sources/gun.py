"""The particle gun: particles of chosen species and kinematics from the luminous region,
optionally decayed through phase space.

Per event: a number of gun particles (fixed or Poisson), each with a species drawn from the
weights, a momentum (p or pT), η and φ from 1-D distributions, all starting at one collision
vertex drawn from the luminous region (``n_collisions = 1``, ``collision = 0``). With a decay,
the gun particles that have one get status 2 and an end vertex from their PDG lifetime, and
their daughters follow (generation after generation) with ``mother`` pointing at them. The
particles of an event are ordered gun particles first, then each generation of daughters in the
order of their mothers.

Randomness: stream ``gun`` keys the multiplicity (counter 0) and the gun particle ``j`` of an
event (counters ``1 + 4j .. 4 + 4j``); stream ``gun_decay`` keys the decay of the particle with
index ``i`` in its event (see :func:`lamarr_col.sources.phasespace.keyed_uniforms`). Everything
in an event is thus a function of (seed, event number) only.

Option strings (:meth:`ParticleGun.from_strings`):

- species: ``"pi+:0.6,K+:0.3,p:0.1"`` — names (EvtGen or `particle`) or PDG ids, each with an
  optional ``:weight`` (default 1; weights are normalised);
- p, pt, eta, phi: distribution strings, see :mod:`lamarr_col.sources.distributions`
  (MeV, radians); exactly one of p and pt;
- multiplicity: ``"N"`` (fixed, N ≥ 0) or ``"poisson:MEAN"``;
- decay: descriptor(s) or ``PATH.dec[:MOTHER]``, see :mod:`lamarr_col.sources.decays`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import awkward as ak
import numpy as np
import numpy.typing as npt

from lamarr_col.errors import ConfigError
from lamarr_col.event.build import make_batch
from lamarr_col.event.pdg import SPEED_OF_LIGHT, pdg_table
from lamarr_col.event.schema import STATUS_DECAYED, STATUS_FINAL
from lamarr_col.rng import EventKeys, poisson_from_uniform
from lamarr_col.sources import phasespace
from lamarr_col.sources.base import Source
from lamarr_col.sources.beam import LuminousRegion
from lamarr_col.sources.decays import (
    Decays,
    FlatDecays,
    is_parton,
    parse_decay_option,
    resolve_name,
)
from lamarr_col.sources.distributions import Distribution, Flat, parse_distribution

__all__ = ["Multiplicity", "ParticleGun", "parse_multiplicity", "parse_species"]

#: Transverse-momentum distribution used when neither p nor pt is given (MeV).
DEFAULT_PT = "exp:1500"

#: Candidate number reserved (per decaying particle) for its decay time and mode choice.
_OWN_CANDIDATE = phasespace.MAX_CANDIDATES - 1
#: Deepest decay chain followed (a guard: real chains stop after a handful of generations).
_MAX_GENERATIONS = 64


@dataclass(frozen=True)
class Multiplicity:
    """Gun particles per event: ``value`` exactly, or Poisson with mean ``value``."""

    value: float
    poisson: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.value) or self.value < 0:
            raise ConfigError(f"multiplicity: must be a finite number >= 0, got {self.value}")
        if not self.poisson and self.value != int(self.value):
            raise ConfigError(f"multiplicity: a fixed multiplicity must be whole, got {self.value}")
        if self.poisson and self.value >= 700:
            raise ConfigError(f"multiplicity: Poisson mean must be below 700, got {self.value}")

    def sample(self, keys: EventKeys, events: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """Number of gun particles in each event (stream ``gun``, counter 0)."""
        if not self.poisson:
            return np.full(len(events), int(self.value), dtype=np.int64)
        return poisson_from_uniform(keys.uniform("gun", events, 0), self.value)

    def describe(self) -> str:
        return f"poisson:{self.value!r}" if self.poisson else str(int(self.value))


_MULTIPLICITY_FORMS = "'N' (a whole number >= 0) or 'poisson:MEAN'"


def parse_multiplicity(text: str | int) -> Multiplicity:
    """``"3"`` → exactly 3 per event; ``"poisson:3"`` → Poisson with mean 3."""
    s = str(text).strip()
    kind, sep, rest = s.partition(":")
    try:
        if sep and kind.lower() == "poisson":
            return Multiplicity(float(rest), poisson=True)
        if not sep:
            return Multiplicity(int(s))
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(
            f"multiplicity: cannot use {s!r}; allowed forms: {_MULTIPLICITY_FORMS}"
        ) from err
    raise ConfigError(f"multiplicity: cannot use {s!r}; allowed forms: {_MULTIPLICITY_FORMS}")


def _species_pid(item: str | int) -> int:
    if isinstance(item, (int, np.integer)) or str(item).lstrip("+-").isdigit():
        pid = int(item)
        if not bool(pdg_table().known(pid)):
            raise ConfigError(f"species: unknown PDG id {pid}")
        if is_parton(pid):
            raise ConfigError(f"species: {pid} is a parton, not a particle a detector sees")
        return pid
    pid = resolve_name(str(item).strip(), "species")
    if is_parton(pid):
        raise ConfigError(f"species: {item!r} is a parton, not a particle a detector sees")
    return pid


def parse_species(
    spec: str | Mapping[str, float] | Mapping[int, float] | Mapping[str | int, float],
) -> dict[int, float]:
    """Species and normalised weights by PDG id, from ``"pi+:0.6,K+:0.3,p:0.1"`` or a mapping
    of names / PDG ids to weights. Raises ConfigError naming the option ``species``."""
    forms = "'NAME[:WEIGHT],NAME[:WEIGHT],...' with particle names or PDG ids"
    if isinstance(spec, str):
        items: list[tuple[str | int, float]] = []
        for raw in spec.split(","):
            part = raw.strip()
            if not part:
                raise ConfigError(f"species: empty entry in {spec!r}; allowed form: {forms}")
            label, sep, text = part.rpartition(":")
            if not sep:
                label, text = part, "1"
            try:
                items.append((label.strip(), float(text)))
            except ValueError as err:
                raise ConfigError(
                    f"species: weight {text!r} of {label!r} is not a number; allowed form: {forms}"
                ) from err
    else:
        items = [(k, float(v)) for k, v in spec.items()]
    if not items:
        raise ConfigError(f"species: none given; allowed form: {forms}")
    out: dict[int, float] = {}
    for name, weight in items:
        pid = _species_pid(name)
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"species: weight of {name!r} must be finite and > 0, got {weight}")
        if pid in out:
            raise ConfigError(f"species: {name!r} (PDG id {pid}) given twice")
        if not np.isfinite(pdg_table().mass_of(pid)):
            raise ConfigError(f"species: the PDG table has no mass for {name!r} (id {pid})")
        out[pid] = float(weight)
    total = sum(out.values())
    return {pid: w / total for pid, w in out.items()}


def _boost_vertex(
    cols: dict[str, np.ndarray], rows: np.ndarray, proper_time: np.ndarray
) -> dict[str, np.ndarray]:
    """End vertex (mm, ns) after ``proper_time`` (ns): x + (p/m) c t, t_lab = (E/m) t."""
    m = cols["mass"][rows]
    out = {}
    for axis in "xyz":
        out[f"end_v{axis}"] = (
            cols[f"v{axis}"][rows] + cols[f"p{axis}"][rows] / m * SPEED_OF_LIGHT * proper_time
        )
    out["end_vt"] = cols["vt"][rows] + cols["e"][rows] / m * proper_time
    return out


class ParticleGun(Source):
    """Particles of given species and kinematics, one collision per event, optional decays.

    ``species`` maps names or PDG ids to weights (or is a string, see :func:`parse_species`);
    exactly one of ``p`` and ``pt`` (MeV) is given; ``eta`` and ``phi`` (radians) default to
    flat 2–5 and flat 0–2π.
    """

    kind: ClassVar[str] = "gun"

    def __init__(
        self,
        species: str | Mapping[str, float] | Mapping[int, float] | Mapping[str | int, float],
        *,
        p: Distribution | None = None,
        pt: Distribution | None = None,
        eta: Distribution | None = None,
        phi: Distribution | None = None,
        multiplicity: Multiplicity | int | str = 1,
        decays: Decays | None = None,
        luminous_region: LuminousRegion | None = None,
    ) -> None:
        super().__init__()
        self.species = parse_species(species)
        if (p is None) == (pt is None):
            raise ConfigError("p/pt: give exactly one of a p and a pT distribution")
        momentum = p if p is not None else pt
        assert momentum is not None
        if momentum.support[0] < 0:
            which = "p" if p is not None else "pt"
            raise ConfigError(f"{which}: momenta must be >= 0, got {momentum.describe()}")
        self.p, self.pt = p, pt
        self.eta = eta if eta is not None else Flat(2.0, 5.0)
        self.phi = phi if phi is not None else Flat(0.0, 2.0 * math.pi)
        if not isinstance(multiplicity, Multiplicity):
            multiplicity = parse_multiplicity(multiplicity)
        self.multiplicity = multiplicity
        self.luminous_region = luminous_region if luminous_region is not None else LuminousRegion()
        self.decays = decays
        self._flat: FlatDecays | None = None
        if decays is not None:
            self._flat = decays.flat()
            if not set(self._flat.root) & set(self.species):
                names = ", ".join(sorted(n.name for n in decays.roots.values()))
                raise ConfigError(
                    f"decay: no gun species decays (decays given for {names}; "
                    f"species ids {sorted(self.species)})"
                )
        self._pids = np.array(list(self.species), dtype=np.int64)
        self._cum = np.cumsum(list(self.species.values()))
        self._cum[-1] = 1.0

    @classmethod
    def from_strings(
        cls,
        species: str | None = None,
        p: str | None = None,
        pt: str | None = None,
        eta: str | None = "flat:2:5",
        phi: str | None = "flat:0:6.283185307179586",
        multiplicity: str = "1",
        decay: str | Sequence[str] | None = None,
        luminous_region: LuminousRegion | None = None,
    ) -> ParticleGun:
        """A gun from CLI option strings (forms in the module docstring).

        Defaults: ``pt="exp:1500"`` when neither p nor pt is given; ``species=None`` shoots the
        mothers of the decay descriptors (not their charge conjugates) with equal weights, or
        ``pi+`` when there is no decay either.
        """
        if p is not None and pt is not None:
            raise ConfigError("p/pt: give exactly one of p and pt, not both")
        if p is None and pt is None:
            pt = DEFAULT_PT
        if species is None and decay is None:
            species = "pi+"
        if species is None and isinstance(decay, str) and decay.strip().endswith(".dec"):
            raise ConfigError(
                f"decay: with a decay file, name the mother ({decay}:MOTHER) or give --species"
            )
        species_map = parse_species(species) if species is not None else None
        decays = None
        if decay is not None:
            decays = parse_decay_option(decay, species=list(species_map or ()))
        if species_map is None:
            assert decays is not None
            mothers: list[int] = []
            for pid in decays.roots:  # the descriptors' mothers come first, conjugates after
                if -pid in mothers:
                    break
                mothers.append(pid)
            species_map = dict.fromkeys(mothers, 1.0)
        return cls(
            species_map,
            p=parse_distribution(p, "p") if p is not None else None,
            pt=parse_distribution(pt, "pt") if pt is not None else None,
            eta=parse_distribution(eta, "eta") if eta is not None else None,
            phi=parse_distribution(phi, "phi") if phi is not None else None,
            multiplicity=parse_multiplicity(multiplicity),
            decays=decays,
            luminous_region=luminous_region,
        )

    # -----------------------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        table = pdg_table()
        return {
            "kind": self.kind,
            "species": [
                {"pid": int(pid), "name": table.names[int(table.index(pid))], "weight": w}
                for pid, w in self.species.items()
            ],
            "p": self.p.describe() if self.p is not None else None,
            "pt": self.pt.describe() if self.pt is not None else None,
            "eta": self.eta.describe(),
            "phi": self.phi.describe(),
            "multiplicity": self.multiplicity.describe(),
            "decay": self.decays.metadata() if self.decays is not None else None,
            "luminous_region": asdict(self.luminous_region),
        }

    def batches(
        self,
        n_events: int | None,
        batch_size: int,
        *,
        seed: int = 0,
        run: int = 0,
        first_event: int = 0,
    ) -> Iterator[ak.Array]:
        self._check_counts(n_events, batch_size, needs_count=True)
        assert n_events is not None
        keys = EventKeys(seed)
        for r in self._ranges(first_event, n_events, batch_size):
            events = np.arange(r.start, r.stop, dtype=np.uint64)
            batch = self.generate(keys, events, run=run)
            self.stats.add_batch(batch)
            yield batch

    def generate(self, keys: EventKeys, events: npt.ArrayLike, *, run: int = 0) -> ak.Array:
        """The events with the given numbers, as one batch of the event model."""
        events = np.asarray(events, dtype=np.uint64)
        counts, cols = self._gun_particles(keys, events)
        gens = [cols]
        for _ in range(_MAX_GENERATIONS):
            if self._flat is None or not np.any(gens[-1]["node"] >= 0):
                break
            nxt = self._decay(keys, events, gens[-1], counts)
            counts = counts + np.bincount(nxt["ev"], minlength=len(events))
            gens.append(nxt)
        else:
            raise RuntimeError(f"decay chains deeper than {_MAX_GENERATIONS} generations")
        merged = {k: np.concatenate([g[k] for g in gens]) for k in gens[0]}
        order = np.argsort(merged["ev"], kind="stable")  # generations in order inside an event
        particles = {k: v[order] for k, v in merged.items() if k not in ("ev", "node", "local")}
        return make_batch(
            run=run,
            event=events,
            n_collisions=np.ones(len(events), dtype=np.int32),
            counts=counts,
            particles=particles,
            origin="particle gun",
        )

    def _gun_particles(
        self, keys: EventKeys, events: npt.NDArray[np.uint64]
    ) -> tuple[npt.NDArray[np.int64], dict[str, np.ndarray]]:
        counts = self.multiplicity.sample(keys, events)
        ev = np.repeat(np.arange(len(events)), counts)
        starts = np.cumsum(counts) - counts
        j = np.arange(len(ev), dtype=np.int64) - starts[ev]
        evn = events[ev]
        base = np.uint64(1) + np.uint64(4) * j.astype(np.uint64)
        u = [keys.uniform("gun", evn, base + np.uint64(k)) for k in range(4)]

        which = np.minimum(np.searchsorted(self._cum, u[0], side="right"), len(self._pids) - 1)
        pid = self._pids[which]
        mass = pdg_table().mass_of(pid)
        eta = self.eta.ppf(u[2])
        phi = self.phi.ppf(u[3])
        if self.pt is not None:
            pt = self.pt.ppf(u[1])
            p = pt * np.cosh(eta)
        else:
            assert self.p is not None
            p = self.p.ppf(u[1])
            pt = p / np.cosh(eta)

        vertex = self.luminous_region.sample(keys, events, np.zeros(len(events), dtype=np.int64))
        nan = np.full(len(ev), np.nan)
        node = np.full(len(ev), -1, dtype=np.int64)
        if self._flat is not None:
            for spid, root in self._flat.root.items():
                node[pid == spid] = root
        cols = {
            "pid": pid,
            "mass": mass,
            "px": pt * np.cos(phi),
            "py": pt * np.sin(phi),
            "pz": pt * np.sinh(eta),
            "e": np.hypot(p, mass),
            **{f"v{a}": vertex[a][ev] for a in "xyzt"},
            **{f"end_v{a}": nan.copy() for a in "xyzt"},
            "mother": np.full(len(ev), -1, dtype=np.int64),
            "status": np.full(len(ev), STATUS_FINAL, dtype=np.int64),
            "collision": np.zeros(len(ev), dtype=np.int64),
            "ev": ev,
            "node": node,
            "local": j,
        }
        return counts, cols

    def _decay(
        self,
        keys: EventKeys,
        events: npt.NDArray[np.uint64],
        cols: dict[str, np.ndarray],
        counts_before: npt.NDArray[np.int64],
    ) -> dict[str, np.ndarray]:
        """Decay the particles of one generation that have a decay node (``cols`` is updated
        with their status and end vertex); returns the next generation, sorted by event."""
        flat = self._flat
        assert flat is not None
        rows = np.flatnonzero(cols["node"] >= 0)
        node = cols["node"][rows]
        evn = events[cols["ev"][rows]]
        local = cols["local"][rows].astype(np.uint64)
        own = phasespace.decay_counter(local, np.full(rows.size, _OWN_CANDIDATE))
        u_time = keys.uniform("gun_decay", evn, own)
        u_mode = keys.uniform("gun_decay", evn, own + np.uint64(1))

        proper_time = -flat.lifetime[node] * np.log(u_time)
        for k, v in _boost_vertex(cols, rows, proper_time).items():
            cols[k][rows] = v
        cols["status"][rows] = STATUS_DECAYED
        cols["node"][rows] = -1  # decayed: not again

        pieces: list[dict[str, np.ndarray]] = []
        for n_id in np.unique(node):
            at_node = node == n_id
            cum = np.array([m[0] for m in flat.modes[n_id]])
            mode = np.minimum(np.searchsorted(cum, u_mode, side="right"), len(cum) - 1)
            for m_id, (_, d_pid, d_mass, d_node) in enumerate(flat.modes[n_id]):
                sel = np.flatnonzero(at_node & (mode == m_id))
                if sel.size:
                    pieces.append(
                        self._daughters(
                            keys, evn[sel], local[sel], rows[sel], cols, d_pid, d_mass, d_node
                        )
                    )
        nxt = {k: np.concatenate([p[k] for p in pieces]) for k in pieces[0]}
        # order by mother position, then daughter number: mothers are already in event order
        order = np.lexsort((nxt["_d"], nxt["_m"]))
        nxt = {k: v[order] for k, v in nxt.items() if not k.startswith("_")}
        ev = nxt["ev"]
        first = np.searchsorted(ev, ev, side="left")
        nxt["local"] = counts_before[ev] + (np.arange(len(ev)) - first)
        return nxt

    @staticmethod
    def _daughters(
        keys: EventKeys,
        evn: np.ndarray,
        local: np.ndarray,
        rows: np.ndarray,
        cols: dict[str, np.ndarray],
        d_pid: np.ndarray,
        d_mass: np.ndarray,
        d_node: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Daughters (lab frame) of the mothers ``rows`` of ``cols``, all decaying the same way."""
        n_mothers, n_d = rows.size, d_pid.size
        mother_p4 = np.stack([cols[k][rows] for k in ("px", "py", "pz", "e")], axis=1)
        if n_d == 1:  # relabelling (K0 -> K_S0): same momentum, the daughter's own mass
            lab = mother_p4[:, None, :].copy()
            lab[:, 0, 3] = np.hypot(np.linalg.norm(mother_p4[:, :3], axis=1), d_mass[0])
        else:
            draw = phasespace.keyed_uniforms(keys, "gun_decay", evn, local)
            rest = phasespace.generate(
                cols["mass"][rows], d_mass, draw, max_candidates=_OWN_CANDIDATE
            )
            lab = phasespace.boost_from_rest(rest, mother_p4[:, None, :], cols["mass"][rows, None])
        out = phasespace.daughter_columns(cols, rows, d_pid, d_mass, lab)
        rep = out["_m"]
        out["ev"] = cols["ev"][rep]
        out["node"] = np.tile(d_node, n_mothers).astype(np.int64)
        out["local"] = np.zeros(rep.size, dtype=np.int64)
        return out
