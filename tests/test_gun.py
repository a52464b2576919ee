"""The particle gun: kinematics, species, vertices, decays, keyed randomness, options."""

from __future__ import annotations

import json
import math

import awkward as ak
import numpy as np
import pytest

from lamarr_col.errors import ConfigError
from lamarr_col.event.pdg import SPEED_OF_LIGHT, pdg_table
from lamarr_col.sources.beam import LuminousRegion
from lamarr_col.sources.decays import decays_from_descriptors, parse_descriptor
from lamarr_col.sources.gun import ParticleGun, parse_multiplicity, parse_species

LB_CHAIN = "Lambda_b0 -> (Lambda_c+ -> p+ K- pi+) mu- anti-nu_mu"


def _gun(**kw) -> ParticleGun:
    args = {
        "species": "pi+:0.6,K+:0.3,p:0.1",
        "p": None,
        "pt": "exp:1500",
        "multiplicity": "1",
        "decay": None,
        "luminous_region": LuminousRegion(),
    }
    args.update(kw)
    return ParticleGun.from_strings(**args)


def _run(gun: ParticleGun, n: int, batch_size: int = 10_000, seed: int = 1) -> ak.Array:
    return ak.concatenate(list(gun.batches(n, batch_size, seed=seed)))


def _flat(events: ak.Array, field: str) -> np.ndarray:
    return ak.to_numpy(ak.flatten(events.mcparticles[field]))


def test_species_fractions() -> None:
    ev = _run(_gun(), 20_000)
    pid = _flat(ev, "pid")
    for code, frac in [(211, 0.6), (321, 0.3), (2212, 0.1)]:
        sigma = math.sqrt(frac * (1 - frac) / len(pid))
        assert abs(np.mean(pid == code) - frac) < 5 * sigma


def test_pt_option_and_ranges() -> None:
    ev = _run(_gun(pt="exp:1500:100:50000"), 20_000)
    px, py, pz = (_flat(ev, k) for k in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    assert pt.min() >= 100
    assert pt.max() <= 50_000
    assert abs(pt.mean() - 1600) < 5 * 1500 / math.sqrt(len(pt))
    eta = np.arcsinh(pz / pt)
    assert eta.min() >= 2
    assert eta.max() <= 5
    phi = np.arctan2(py, px) % (2 * np.pi)
    assert abs(phi.mean() - np.pi) < 0.05
    mass = _flat(ev, "mass")
    e = _flat(ev, "e")
    np.testing.assert_allclose(e**2, pt**2 + pz**2 + mass**2, rtol=1e-12)


def test_p_option_and_custom_eta_phi() -> None:
    ev = _run(_gun(p="fixed:10000", pt=None, eta="flat:3:3.5", phi="flat:0:1"), 5000)
    px, py, pz = (_flat(ev, k) for k in ("px", "py", "pz"))
    np.testing.assert_allclose(np.sqrt(px**2 + py**2 + pz**2), 10_000, rtol=1e-12)
    eta = np.arcsinh(pz / np.hypot(px, py))
    assert eta.min() >= 3 - 1e-12
    assert eta.max() <= 3.5 + 1e-12
    phi = np.arctan2(py, px)
    assert phi.min() >= 0
    assert phi.max() <= 1 + 1e-12


def test_origin_spread_matches_luminous_region() -> None:
    region = LuminousRegion(z=10.0, sigma_x=0.05, sigma_y=0.02, sigma_z=40.0, sigma_t=0.2)
    ev = _run(_gun(luminous_region=region, multiplicity="2"), 20_000)
    assert np.all(ak.to_numpy(ev.n_collisions) == 1)
    assert np.all(_flat(ev, "collision") == 0)
    first = ev.mcparticles[:, 0]
    for axis, sigma, centre in [("vx", 0.05, 0), ("vy", 0.02, 0), ("vz", 40.0, 10), ("vt", 0.2, 0)]:
        x = ak.to_numpy(first[axis])
        assert x.std() == pytest.approx(sigma, rel=0.03)
        assert abs(x.mean() - centre) < 5 * sigma / math.sqrt(len(x))
    # all particles of an event share the vertex
    assert ak.all(ev.mcparticles.vz == first.vz)
    assert np.all(np.isnan(_flat(ev, "end_vx")))
    assert np.all(_flat(ev, "status") == 1)
    assert np.all(_flat(ev, "mother") == -1)


def test_multiplicity() -> None:
    fixed = _run(_gun(multiplicity="3"), 100)
    assert np.all(ak.to_numpy(ak.num(fixed.mcparticles)) == 3)
    pois = _run(_gun(multiplicity="poisson:0.7"), 20_000)
    n = ak.to_numpy(ak.num(pois.mcparticles))
    assert abs(n.mean() - 0.7) < 5 * math.sqrt(0.7 / len(n))
    assert np.mean(n == 0) == pytest.approx(math.exp(-0.7), abs=0.02)
    empty = _run(_gun(multiplicity="0"), 10)
    assert len(empty) == 10
    assert ak.sum(ak.num(empty.mcparticles)) == 0


@pytest.mark.parametrize(
    "decay", [LB_CHAIN, ["Lambda_b0 -> Lambda_c+ mu- anti-nu_mu", "Lambda_c+ -> p+ K- pi+"]]
)
def test_lambda_b_chain(decay: str | list[str]) -> None:
    gun = _gun(species="Lambda_b0:0.5,anti-Lambda_b0:0.5", pt="exp:5000", decay=decay)
    ev = _run(gun, 4000, batch_size=1000)
    mc = ev.mcparticles
    assert np.all(ak.to_numpy(ak.num(mc)) == 7)
    assert np.all(ak.to_numpy(mc.status) == np.array([2, 2, 1, 1, 1, 1, 1]))
    assert np.all(ak.to_numpy(mc.mother) == np.array([-1, 0, 0, 0, 1, 1, 1]))
    sign = np.sign(ak.to_numpy(mc.pid[:, 0]))
    np.testing.assert_array_equal(
        ak.to_numpy(mc.pid), sign[:, None] * np.array([5122, 4122, 13, -14, 2212, -321, 211])
    )
    assert 0.45 < np.mean(sign > 0) < 0.55
    assert np.all(ak.to_numpy(ak.sum(mc.charge[mc.status == 1], axis=1)) == 0)

    p4 = np.stack([ak.to_numpy(mc[k]) for k in ("px", "py", "pz", "e")], axis=-1)  # [ev, 7, 4]
    for mother, daughters in [(0, [1, 2, 3]), (1, [4, 5, 6])]:
        total = p4[:, daughters].sum(axis=1)
        # relative to the mother's energy (components near zero have no relative precision)
        assert np.all(np.abs(total - p4[:, mother]) <= 1e-6 * p4[:, mother, 3:4])
        for d in daughters:
            for a in "xyzt":
                np.testing.assert_array_equal(
                    ak.to_numpy(mc[f"v{a}"][:, d]), ak.to_numpy(mc[f"end_v{a}"][:, mother])
                )
    for i in range(2, 7):
        assert np.all(np.isnan(ak.to_numpy(mc.end_vx[:, i])))

    # decay length along the momentum, in units of βγcτ: exponential with mean 1
    table = pdg_table()
    for mother, pid in [(0, 5122), (1, 4122)]:
        flight = np.stack(
            [ak.to_numpy(mc[f"end_v{a}"][:, mother] - mc[f"v{a}"][:, mother]) for a in "xyz"],
            axis=-1,
        )
        p = p4[:, mother, :3]
        m = float(table.mass_of(pid))
        length = np.linalg.norm(flight, axis=1)
        np.testing.assert_allclose(
            np.sum(flight * p, axis=1), length * np.linalg.norm(p, axis=1), rtol=1e-9
        )
        scaled = length / (np.linalg.norm(p, axis=1) / m * float(table.ctau_of(pid)))
        assert abs(scaled.mean() - 1) < 5 / math.sqrt(len(scaled))
        dt = ak.to_numpy(mc.end_vt[:, mother] - mc.vt[:, mother])
        np.testing.assert_allclose(
            dt * SPEED_OF_LIGHT * np.linalg.norm(p, axis=1) / p4[:, mother, 3],
            length,
            rtol=1e-6,
            atol=1e-12,
        )


def test_undecayed_species_and_unstable_daughters() -> None:
    gun = _gun(species="B0:0.5,pi+:0.5", decay="B0 -> K+ pi- pi0 K_S0", multiplicity="2")
    ev = _run(gun, 500)
    pid, status, end_vx = (_flat(ev, k) for k in ("pid", "status", "end_vx"))
    assert np.all(status[pid == 211] == 1)
    assert np.all(status[np.abs(pid) == 511] == 2)
    ks = pid == 310
    assert ks.sum() > 0
    assert np.all(status[ks] == 1)
    assert np.all(np.isnan(end_vx[ks]))


def test_batch_size_independence() -> None:
    gun = _gun(
        species="Lambda_b0:0.3,pi+:0.7", pt="exp:4000", decay=LB_CHAIN, multiplicity="poisson:1.5"
    )
    runs = [_run(gun, 100, batch_size=b, seed=42) for b in (1, 7, 100)]
    first = next(iter(gun.batches(10, 10, seed=42, first_event=50)))
    assert ak.sum(ak.num(runs[0].mcparticles)) > 150
    for other, ref in [(runs[1], runs[0]), (runs[2], runs[0]), (first, runs[0][50:60])]:
        assert ak.to_list(ak.num(other.mcparticles)) == ak.to_list(ak.num(ref.mcparticles))
        np.testing.assert_array_equal(ak.to_numpy(other.event), ak.to_numpy(ref.event))
        for field in ref.mcparticles.fields:  # NaN-aware, bit-exact
            np.testing.assert_array_equal(_flat(other, field), _flat(ref, field))


def test_seeds_differ() -> None:
    gun = _gun(decay=None)
    a, b = _run(gun, 50, seed=1), _run(gun, 50, seed=2)
    assert not np.array_equal(_flat(a, "px"), _flat(b, "px"))


def test_dec_file_with_branching_fractions(tmp_path) -> None:
    path = tmp_path / "user.dec"
    path.write_text(
        "Decay D0\n0.75 K- pi+ PHSP;\n0.25 K- pi+ pi0 PHSP;\nEnddecay\n"
        "CDecay anti-D0\n"
        "Decay pi0\n1.0 gamma gamma PHSP;\nEnddecay\nEnd\n"
    )
    gun = _gun(species="D0", decay=f"{path}:D0", pt="fixed:2000")
    mc = _run(gun, 4000).mcparticles
    n = ak.to_numpy(ak.num(mc))
    # K pi (3 particles) or K pi pi0 -> gamma gamma (6 particles)
    assert set(np.unique(n)) == {3, 6}
    assert np.mean(n == 3) == pytest.approx(0.75, abs=0.03)
    six = mc[n == 6]
    assert np.all(ak.to_numpy(six.pid[:, 3]) == 111)
    assert np.all(ak.to_numpy(six.status[:, 3]) == 2)
    assert np.all(ak.to_numpy(six.mother[:, 4:]) == 3)
    meta = gun.metadata()
    json.dumps(meta)
    # without a mother the gun species choose
    assert _gun(species="D0", decay=str(path)).decays is not None


def test_metadata_is_json() -> None:
    gun = _gun(species="Lambda_b0", decay=LB_CHAIN)
    meta = json.loads(json.dumps(gun.metadata()))
    assert meta["kind"] == "gun"
    assert meta["pt"] == "exp:1500.0"
    assert meta["decay"]["descriptors"][0] == LB_CHAIN


def test_species_parsing() -> None:
    assert parse_species("pi+:0.6,K+:0.3,p:0.1") == pytest.approx({211: 0.6, 321: 0.3, 2212: 0.1})
    assert parse_species("211:1,-211:3") == {211: 0.25, -211: 0.75}
    assert parse_species({"Lambda(b)0": 2.0}) == {5122: 1.0}
    assert parse_species("mu-") == {13: 1.0}


def test_multiplicity_parsing() -> None:
    assert parse_multiplicity("3").describe() == "3"
    assert parse_multiplicity("poisson:2.5").describe() == "poisson:2.5"


def test_descriptor_parsing_handles_names_with_parentheses() -> None:
    chain = parse_descriptor("B0 -> (K*(892)0 -> K+ pi-) (f(0)(980) -> pi+ pi-)")
    fs = chain["B0"][0]["fs"]
    assert list(fs[0]) == ["K*(892)0"]
    assert fs[1]["f(0)(980)"][0]["fs"] == ["pi+", "pi-"]
    d = decays_from_descriptors("B0 -> (K*(892)0 -> K+ pi-) (f(0)(980) -> pi+ pi-)")
    assert d.roots[511].modes[0].daughters[0].pid == 313


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"species": "pi+:0.6,Kplus:0.4"}, r"^species: .*Kplus"),
        ({"species": "pi+:abc"}, r"^species: "),
        ({"species": "pi+:-1"}, r"^species: "),
        ({"species": "pi+,pi+"}, r"^species: .*twice"),
        ({"pt": "gauss:1"}, r"^pt: .*allowed forms"),
        ({"pt": "flat:-5:5"}, r"^pt: "),
        ({"p": "exp:1000"}, r"^p/pt: "),
        ({"eta": "flat:5:2"}, r"^eta: "),
        ({"phi": "flat"}, r"^phi: "),
        ({"multiplicity": "many"}, r"^multiplicity: .*poisson:MEAN"),
        ({"multiplicity": "-1"}, r"^multiplicity: "),
        ({"multiplicity": "1.5"}, r"^multiplicity: "),
        ({"multiplicity": "poisson:x"}, r"^multiplicity: "),
        ({"decay": "B0 => K+ pi-"}, r"^decay: .*allowed forms"),
        ({"decay": "Lambda_b0 -> Lambda_c+ mu- anti-nu_muu"}, r"did you mean 'anti-nu_mu'"),
        ({"decay": "pi+ -> mu+ mu- e+", "species": "pi+"}, r"kinematically forbidden"),
        ({"decay": "B0 -> pi+ pi+", "species": "B0"}, r"does not conserve charge \(\+0 -> \+2\)"),
        ({"decay": "B0 -> (D- -> K+ pi- pi-) pi+"}, r"^decay: no gun species decays"),
        ({"decay": "B0 -> (D- -> K+ pi- pi- pi+"}, r"unbalanced"),
        ({"decay": "/no/such.dec:B0"}, r"^decay: no .dec file"),
    ],
)
def test_bad_options_raise_config_error(kw: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _gun(**kw)
