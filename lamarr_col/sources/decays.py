"""Decays for the particle gun: descriptor strings and EvtGen ``.dec`` files → decay trees.

Descriptor strings
    ``"Lambda_b0 -> Lambda_c+ mu- anti-nu_mu"``; a daughter that decays in turn is written in
    parentheses, ``"Lambda_b0 -> (Lambda_c+ -> p+ K- pi+) mu- anti-nu_mu"``, to any depth. Such a
    nested decay applies to that occurrence only. Several descriptors (a list, or one string with
    ``;`` between them) each give the decay of their mother *by name*: it applies to every
    particle of that name that has no nested decay, e.g.
    ``"Lambda_b0 -> Lambda_c+ mu- anti-nu_mu; Lambda_c+ -> p+ K- pi+"``.
    decaylanguage 1.1.2 writes descriptors (``DecayChain.to_string``) but has no parser for
    them, so this module tokenises them itself into decaylanguage's decay-chain dictionary
    (``{mother: [{"bf", "fs", "model", "model_params"}]}``, the output format of
    ``DecFileParser.build_decay_chains``); both inputs then go through the same tree builder.
``.dec`` files
    parsed with decaylanguage's ``DecFileParser``. Only the particles reachable from the chosen
    mothers are expanded, one level at a time (``build_decay_chains`` with every other decaying
    particle marked stable), because building whole chains of a common hadron from a big DEC
    file takes minutes. All modes are kept with their branching fractions (renormalised);
    modes with partons in the final state, with particles the PDG table lacks (EvtGen
    pseudo-particles such as ``rndmflav``, some excited b baryons) or below threshold at
    nominal masses are dropped and listed in :attr:`Decays.notes`.

Particle names may be EvtGen names (``"p+"``, ``"anti-nu_mu"``) or ``particle`` names
(``"Lambda(b)0"``). All kinematics is phase space whatever model a ``.dec`` file names; masses are
the PDG nominal masses (MeV), lifetimes the PDG lifetimes (ns; unknown lifetimes decay at once).
The decay of a particle is also used, charge-conjugated, for its antiparticle when the latter
has none of its own.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lamarr_col.errors import ConfigError
from lamarr_col.event.pdg import UnknownParticleError, pdg_table

__all__ = [
    "DECAY_FORMS",
    "DecayMode",
    "DecayNode",
    "Decays",
    "FlatDecays",
    "decays_from_dec_file",
    "decays_from_descriptors",
    "parse_decay_option",
    "parse_descriptor",
    "resolve_name",
]

#: The accepted forms of the decay option, quoted in error messages.
DECAY_FORMS = (
    "'MOTHER -> D1 D2 ...'",
    "'MOTHER -> (D1 -> E1 E2) D2 ...'",
    "several descriptors separated by ';'",
    "'PATH.dec' (decays of the gun species found in the file)",
    "'PATH.dec:MOTHER'",
)

ChainDict = dict[str, list[dict[str, Any]]]


@dataclass(frozen=True, eq=False)
class DecayNode:
    """A particle in a decay tree and the ways it may decay (none: it stays undecayed).

    ``mass`` in MeV, ``lifetime`` in ns (0 for decays at the production point).
    """

    name: str
    pid: int
    mass: float
    lifetime: float
    modes: tuple[DecayMode, ...] = ()


@dataclass(frozen=True, eq=False)
class DecayMode:
    """One decay channel: normalised branching fraction, daughters, EvtGen model name."""

    bf: float
    daughters: tuple[DecayNode, ...]
    model: str = "PHSP"


@dataclass(frozen=True)
class FlatDecays:
    """A decay forest flattened for vectorised use: node ``i`` has ``pid[i]``, ``mass[i]``,
    ``lifetime[i]`` and modes ``modes[i]``, each mode ``(cumulative bf, daughter pids,
    daughter masses, daughter node ids (-1: no decay))``; ``root`` maps a PDG id to its node."""

    pid: np.ndarray
    mass: np.ndarray
    lifetime: np.ndarray
    modes: tuple[tuple[tuple[float, np.ndarray, np.ndarray, np.ndarray], ...], ...]
    root: Mapping[int, int]


@dataclass(frozen=True)
class Decays:
    """Decays of the gun particles by PDG id, where they came from, and notes for the summary."""

    roots: Mapping[int, DecayNode]
    source: str
    notes: tuple[str, ...] = ()
    _flat: list[FlatDecays] = field(default_factory=list, repr=False, compare=False)

    def with_conjugates(self) -> Decays:
        """A copy where each antiparticle without a decay of its own gets the conjugate one."""
        roots = dict(self.roots)
        table = pdg_table()
        memo: dict[int, DecayNode] = {}
        for pid, node in self.roots.items():
            if -pid not in roots and bool(table.known(-pid)):
                roots[-pid] = _conjugate(node, memo)
        return Decays(roots, self.source, self.notes)

    def flat(self) -> FlatDecays:
        """The flattened form (built once)."""
        if not self._flat:
            self._flat.append(_flatten(self.roots))
        return self._flat[0]

    def descriptors(self, limit: int = 50) -> list[str]:
        """Descriptor strings of the decay trees (at most ``limit`` modes per particle shown)."""
        return [_describe(node, top=True, limit=limit) for node in self.roots.values()]

    def metadata(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mothers": sorted(n.name for n in self.roots.values()),
            "descriptors": self.descriptors(limit=5),
            "notes": list(self.notes),
        }


def _describe(node: DecayNode, *, top: bool, limit: int) -> str:
    if not node.modes:
        return node.name
    shown = []
    for mode in node.modes[:limit]:
        daughters = " ".join(_describe(d, top=False, limit=limit) for d in mode.daughters)
        bf = "" if len(node.modes) == 1 else f"[{mode.bf:.4g}] "
        shown.append(bf + daughters)
    more = f" | ... {len(node.modes) - limit} more" if len(node.modes) > limit else ""
    text = f"{node.name} -> {' | '.join(shown)}{more}"
    return text if top else f"({text})"


def resolve_name(name: str, where: str) -> int:
    """PDG id of a name; ConfigError naming the option, with suggestions, if nobody knows it."""
    try:
        return pdg_table().from_name(name)
    except UnknownParticleError as err:
        raise ConfigError(f"{where}: {err}") from None


def _particle(name: str, where: str, pid: int | None = None) -> tuple[int, float, float]:
    """PDG id, nominal mass (MeV) and lifetime (ns; NaN → 0) of a named particle."""
    table = pdg_table()
    pid = resolve_name(name, where) if pid is None else pid
    mass = float(table.mass_of(pid))
    if not np.isfinite(mass):
        raise ConfigError(f"{where}: the PDG table has no mass for {name!r} (id {pid})")
    lifetime = float(table.lifetime_of(pid))
    return pid, mass, (0.0 if np.isnan(lifetime) else lifetime)


def is_parton(pid: int) -> bool:
    a = abs(pid)
    # quarks, gluon, diquarks (xy0s) and generator-internal codes (strings, clusters)
    return 0 < a < 10 or a == 21 or (1000 < a < 6000 and (a // 10) % 10 == 0) or 81 <= a <= 100


# ---------------------------------------------------------------------------------------------
# descriptor strings


def _tokens(text: str) -> list[str]:
    """Split a descriptor into names, '->', '(' and ')'.

    Names may contain balanced parentheses ("K*(892)0", "f_0(980)"), so only a '(' at the start
    of a word opens a sub-decay and a ')' at the end of a word closes one when the word has more
    ')' than '('.
    """
    out: list[str] = []
    for raw in text.replace("->", " -> ").split():
        opens = len(raw) - len(raw.lstrip("("))
        out += ["("] * opens
        word = raw[opens:]
        closes = 0
        while word.endswith(")") and word.count(")") > word.count("("):
            word = word[:-1]
            closes += 1
        if word:
            out.append(word)
        out += [")"] * closes
    return out


def parse_descriptor(text: str) -> ChainDict:
    """One descriptor → decaylanguage's chain dictionary ``{mother: [{"bf": 1.0, "fs": [...],
    "model": "PHSP", "model_params": ""}]}``, sub-decays nested as dictionaries in ``"fs"``."""
    tokens = _tokens(text)
    where = f"decay descriptor {text!r}"

    def fail(why: str) -> ConfigError:
        return ConfigError(f"{where}: {why}; allowed forms: {', '.join(DECAY_FORMS)}")

    def decay(i: int) -> tuple[ChainDict, int]:
        if i >= len(tokens) or tokens[i] in ("->", "(", ")"):
            raise fail("expected a mother particle name")
        mother = tokens[i]
        if i + 1 >= len(tokens) or tokens[i + 1] != "->":
            raise fail(f"expected '->' after {mother!r}")
        i += 2
        fs: list[Any] = []
        while i < len(tokens) and tokens[i] != ")":
            if tokens[i] == "(":
                sub, i = decay(i + 1)
                if i >= len(tokens) or tokens[i] != ")":
                    raise fail("unbalanced parentheses")
                fs.append(sub)
                i += 1
            elif tokens[i] == "->":
                raise fail("'->' without a mother (put sub-decays in parentheses)")
            else:
                fs.append(tokens[i])
                i += 1
        if not fs:
            raise fail(f"no daughters for {mother!r}")
        return {mother: [{"bf": 1.0, "fs": fs, "model": "PHSP", "model_params": ""}]}, i

    chain, end = decay(0)
    if end != len(tokens):
        raise fail("unbalanced parentheses")
    return chain


def _split_descriptors(descriptors: str | Sequence[str]) -> list[str]:
    items = [descriptors] if isinstance(descriptors, str) else list(descriptors)
    return [d.strip() for item in items for d in item.split(";") if d.strip()]


def decays_from_descriptors(descriptors: str | Sequence[str]) -> Decays:
    """Decays from descriptor strings (forms in the module docstring).

    Raises ConfigError for syntax errors, unknown names (with suggestions), a mother given twice
    and decays below threshold at nominal masses.
    """
    texts = _split_descriptors(descriptors)
    if not texts:
        raise ConfigError(f"decay: empty descriptor; allowed forms: {', '.join(DECAY_FORMS)}")
    by_name: dict[str, tuple[str, dict[str, Any]]] = {}
    for text in texts:
        chain = parse_descriptor(text)
        ((mother, (mode,)),) = chain.items()
        if mother in by_name:
            raise ConfigError(
                f"decay: {mother!r} has two decays ({by_name[mother][0]!r}, {text!r})"
            )
        by_name[mother] = (text, mode)

    built: dict[str, DecayNode] = {}
    building: set[str] = set()

    def node(name: str, mode: dict[str, Any] | None, where: str) -> DecayNode:
        # a nested mode belongs to this occurrence; otherwise use the by-name decay, if any
        if mode is None and name in by_name:
            if name in built:
                return built[name]
            if name in building:
                raise ConfigError(f"decay: {name!r} decays into itself")
            building.add(name)
            made = node(name, by_name[name][1], f"decay descriptor {by_name[name][0]!r}")
            built[name] = made
            return made
        pid, mass, lifetime = _particle(name, where)
        if mode is None:
            return DecayNode(name, pid, mass, lifetime)
        daughters = []
        for d in mode["fs"]:
            if isinstance(d, dict):
                ((dname, (dmode,)),) = d.items()
                daughters.append(node(dname, dmode, where))
            else:
                daughters.append(node(d, None, where))
        _check_decay(name, pid, mass, lifetime, daughters, where)
        return DecayNode(name, pid, mass, lifetime, (DecayMode(1.0, tuple(daughters)),))

    roots: dict[int, DecayNode] = {}
    for name in by_name:
        made = node(name, None, "decay")
        roots.setdefault(made.pid, made)
    return Decays(roots, "; ".join(texts)).with_conjugates()


def _check_decay(
    name: str, pid: int, mass: float, lifetime: float, daughters: Sequence[DecayNode], where: str
) -> None:
    if np.isinf(lifetime):
        raise ConfigError(f"{where}: {name!r} is stable in the PDG table and cannot decay")
    parton = [d.name for d in daughters if is_parton(d.pid)]
    if parton:
        raise ConfigError(f"{where}: partons {parton} cannot be decay products in phase space")
    charges = pdg_table().charge_of([pid, *(d.pid for d in daughters)])
    if abs(float(charges[0]) - float(charges[1:].sum())) > 1e-6:
        names = " ".join(d.name for d in daughters)
        raise ConfigError(
            f"{where}: {name} -> {names} does not conserve charge "
            f"({float(charges[0]):+g} -> {float(charges[1:].sum()):+g})"
        )
    total = sum(d.mass for d in daughters)
    # a one-body "decay" (K0 -> K_S0) relabels the particle and keeps its momentum
    if len(daughters) > 1 and not total < mass:
        names = " ".join(d.name for d in daughters)
        raise ConfigError(
            f"{where}: {name} -> {names} is kinematically forbidden: daughter masses sum to "
            f"{total:.6g} MeV, not below the {name} mass {mass:.6g} MeV (id {pid})"
        )


# ---------------------------------------------------------------------------------------------
# .dec files


def _parse_dec_file(path: Path) -> tuple[Any, list[str]]:
    from decaylanguage import DecFileParser

    if not path.is_file():
        raise ConfigError(f"decay: no .dec file {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser = DecFileParser(str(path))
            parser.parse()
        except Exception as err:  # lark raises many kinds; all mean a malformed file
            raise ConfigError(f"decay: cannot parse {path}: {err}") from err
    return parser, [f"{path.name}: {w.message}".splitlines()[0] for w in caught]


def decays_from_dec_file(
    path: str | Path, mothers: Iterable[str | int] | None = None, *, species: Iterable[int] = ()
) -> Decays:
    """Decays of ``mothers`` (names as in the file, or PDG ids) from an EvtGen ``.dec`` file.

    With ``mothers=None`` every particle of ``species`` (PDG ids) that the file decays is used.
    """
    path = Path(path)
    parser, notes = _parse_dec_file(path)
    aliases: dict[str, str] = dict(parser.dict_aliases())
    decaying = set(parser.list_decay_mother_names())
    where = f"decay file {path}"

    known: dict[str, int | None] = {}

    def pid_or_none(name: str) -> int | None:
        if name not in known:
            try:
                known[name] = pdg_table().from_name(aliases.get(name, name))
            except UnknownParticleError:
                known[name] = None
        return known[name]

    def pid_of(name: str) -> int:
        pid = pid_or_none(name)
        return pid if pid is not None else resolve_name(aliases.get(name, name), where)

    wanted: list[str] = []
    if mothers is None:
        by_pid: dict[int, str] = {}
        for name in sorted(decaying, key=lambda n: (n in aliases, n)):
            pid = pid_or_none(name)
            if pid is not None:  # names the PDG table lacks cannot be gun species anyway
                by_pid.setdefault(pid, name)
        wanted = [by_pid[p] for p in species if p in by_pid]
        if not wanted:
            raise ConfigError(f"{where}: none of the gun species has a decay in the file")
    else:
        for m in mothers:
            name = str(m)
            if name not in decaying:
                pid = int(m) if isinstance(m, int) or name.lstrip("-").isdigit() else None
                match = [n for n in decaying if pid is not None and pid_or_none(n) == pid]
                if not match:
                    import difflib

                    close = difflib.get_close_matches(name, sorted(decaying), n=3)
                    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                    raise ConfigError(f"{where}: no decay of {name!r} in the file{hint}")
                name = min(match, key=lambda n: (n in aliases, n))
            wanted.append(name)

    built: dict[str, DecayNode] = {}
    building: set[str] = set()
    dropped: list[str] = []

    def node(name: str) -> DecayNode:
        if name in built:
            return built[name]
        # EvtGen pseudo-particles (rndmflav, Xsu) and states the PDG table lacks get pid 0
        pid = pid_of(name) if name in wanted else (pid_or_none(name) or 0)
        if pid == 0 or is_parton(pid) or not np.isfinite(pdg_table().mass_of(pid)):
            # kept as a leaf without a mass: the modes it appears in are dropped below
            made = DecayNode(name, pid, np.nan, 0.0)
            built[name] = made
            return made
        pid, mass, lifetime = _particle(name, where, pid)
        if name not in decaying or np.isinf(lifetime):
            made = DecayNode(name, pid, mass, lifetime)
            built[name] = made
            return made
        if name in building:
            raise ConfigError(f"{where}: {name!r} decays into itself")
        building.add(name)
        one_level = parser.build_decay_chains(name, stable_particles=decaying - {name})[name]
        modes: list[tuple[float, tuple[DecayNode, ...], str]] = []
        for mode in one_level:
            daughters = tuple(node(d) for d in mode["fs"])
            label = f"{name} -> {' '.join(mode['fs'])}"
            unknown = [d.name for d in daughters if d.pid == 0]
            if unknown:
                dropped.append(f"{label} (not in the PDG table: {', '.join(unknown)})")
            elif any(is_parton(d.pid) for d in daughters):
                dropped.append(f"{label} (partons in the final state)")
            elif any(np.isnan(d.mass) for d in daughters):
                dropped.append(f"{label} (a daughter without PDG mass)")
            elif len(daughters) > 1 and not sum(d.mass for d in daughters) < mass:
                dropped.append(f"{label} (below threshold at nominal masses)")
            elif mode["bf"] > 0:
                modes.append((float(mode["bf"]), daughters, str(mode["model"])))
        building.discard(name)
        total = sum(bf for bf, _, _ in modes)
        made = DecayNode(
            name,
            pid,
            mass,
            lifetime,
            tuple(DecayMode(bf / total, ds, model) for bf, ds, model in modes) if total else (),
        )
        if not total:
            notes.append(f"{name}: no usable decay mode, left undecayed")
        built[name] = made
        return made

    roots: dict[int, DecayNode] = {}
    for name in wanted:
        made = node(name)
        if not made.modes:
            raise ConfigError(f"{where}: no usable decay mode of {name!r} (see {dropped[:5]})")
        roots.setdefault(made.pid, made)
    notes += [f"dropped {d}" for d in dropped]
    label = f"{path}:{','.join(wanted)}" if mothers is not None else str(path)
    return Decays(roots, label, tuple(notes)).with_conjugates()


# ---------------------------------------------------------------------------------------------
# the option and the flat form


_DEC_SUFFIX = re.compile(r"^(?P<path>.+\.dec)(?::(?P<mother>[^:]+))?$", re.IGNORECASE)


def parse_decay_option(value: str | Sequence[str], species: Iterable[int] = ()) -> Decays:
    """The gun's decay option: descriptor(s) or ``PATH.dec[:MOTHER]`` (see :data:`DECAY_FORMS`).

    ``species`` (PDG ids) picks the mothers of a ``.dec`` file given without one.
    """
    if isinstance(value, str):
        m = _DEC_SUFFIX.match(value.strip())
        if m and "->" not in value:
            mother = m.group("mother")
            return decays_from_dec_file(
                m.group("path"), [mother.strip()] if mother else None, species=species
            )
        if "->" not in value:
            raise ConfigError(
                f"decay: cannot use {value!r}; allowed forms: {', '.join(DECAY_FORMS)}"
            )
    return decays_from_descriptors(value)


def _conjugate(node: DecayNode, memo: dict[int, DecayNode]) -> DecayNode:
    if id(node) in memo:
        return memo[id(node)]
    table = pdg_table()
    pid = -node.pid if bool(table.known(-node.pid)) else node.pid
    name = table.names[int(table.index(pid))] if pid != node.pid else node.name
    modes = tuple(
        DecayMode(m.bf, tuple(_conjugate(d, memo) for d in m.daughters), m.model)
        for m in node.modes
    )
    made = DecayNode(name, pid, node.mass, node.lifetime, modes)
    memo[id(node)] = made
    return made


def _flatten(roots: Mapping[int, DecayNode]) -> FlatDecays:
    ids: dict[int, int] = {}
    order: list[DecayNode] = []

    def visit(n: DecayNode) -> int:
        if not n.modes:
            return -1
        if id(n) not in ids:
            ids[id(n)] = len(order)
            order.append(n)
            for mode in n.modes:
                for d in mode.daughters:
                    visit(d)
        return ids[id(n)]

    root = {pid: visit(n) for pid, n in roots.items()}
    modes = []
    for n in order:
        cum = np.cumsum([m.bf for m in n.modes])
        cum /= cum[-1]
        modes.append(
            tuple(
                (
                    float(c),
                    np.array([d.pid for d in m.daughters], dtype=np.int64),
                    np.array([d.mass for d in m.daughters], dtype=np.float64),
                    np.array([ids.get(id(d), -1) if d.modes else -1 for d in m.daughters]),
                )
                for c, m in zip(cum, n.modes, strict=True)
            )
        )
    return FlatDecays(
        pid=np.array([n.pid for n in order], dtype=np.int64),
        mass=np.array([n.mass for n in order], dtype=np.float64),
        lifetime=np.array([n.lifetime for n in order], dtype=np.float64),
        modes=tuple(modes),
        root={p: r for p, r in root.items() if r >= 0},
    )
