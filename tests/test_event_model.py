from __future__ import annotations

from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from particle import Particle

import lamarr_col
from lamarr_col.event import (
    EVENT_FIELDS,
    MCPARTICLE_FIELDS,
    BadEventError,
    UnknownParticleError,
    drop_unknown_pids,
    empty_batch,
    make_batch,
    momenta,
    origins,
    pdg_table,
)
from lamarr_col.event.schema import markdown

ROOT = Path(__file__).parents[1]


def test_docs_match_schema():
    text = (ROOT / "docs" / "event_model.md").read_text(encoding="utf-8")
    assert text == markdown(), "regenerate: python -m lamarr_col.event.schema > docs/event_model.md"


def test_batch_has_declared_types(batch_factory):
    batch = batch_factory(1)
    for name, field in EVENT_FIELDS.items():
        assert batch[name].type.content.primitive == field.dtype
    for name, field in MCPARTICLE_FIELDS.items():
        assert batch.mcparticles[name].type.content.content.primitive == field.dtype
    assert ak.fields(empty_batch()) == ak.fields(batch)


def test_public_api_snapshot():
    assert sorted(lamarr_col.__all__) == [
        "ConfigError",
        "InputError",
        "LamarrError",
        "RunSummary",
        "__version__",
        "event",
        "generate",
        "open_source",
        "read_events",
    ]


def test_pdg_table_agrees_with_particle():
    table = pdg_table()
    ids = np.array([211, -211, 321, 2212, -2212, 22, 11, -13, 130, 310, 3122, 5122, 411, 443])
    for pid, charge, mass, life in zip(
        ids, table.charge_of(ids), table.mass_of(ids), table.lifetime_of(ids), strict=True
    ):
        ref = Particle.from_pdgid(int(pid))
        assert charge == pytest.approx(float(ref.charge))
        assert mass == pytest.approx(ref.mass)
        assert life == pytest.approx(ref.lifetime if ref.lifetime is not None else np.inf)
    assert table.ctau_of([211])[0] == pytest.approx(7804.4, rel=1e-3)  # mm
    assert table.lifetime_of([12])[0] == np.inf


def test_pdg_table_unknown_ids_and_names():
    table = pdg_table()
    assert list(table.known([211, 99999999, -321])) == [True, False, True]
    with pytest.raises(UnknownParticleError, match="99999999"):
        table.charge_of([211, 99999999])
    assert table.from_name("pi+") == 211
    assert table.from_name("p") == 2212  # not the hydrogen nucleus
    assert table.from_name("Lambda_b0") == 5122  # EvtGen spelling
    with pytest.raises(UnknownParticleError, match="did you mean"):
        table.from_name("pi++")


def test_vector_views_do_not_touch_global_behavior(batch_factory):
    before = dict(ak.behavior)
    batch = batch_factory(2)
    p4 = momenta(batch.mcparticles)
    m = batch.mcparticles
    np.testing.assert_allclose(
        ak.flatten(p4.pt).to_numpy(), np.hypot(ak.flatten(m.px), ak.flatten(m.py)).to_numpy()
    )
    np.testing.assert_allclose(
        ak.flatten(p4.mass).to_numpy(), ak.flatten(m.mass).to_numpy(), atol=1e-3
    )
    assert ak.all(origins(batch.mcparticles).z == m.vz)
    assert dict(ak.behavior) == before


def _columns(n: int, **over):
    cols = {f: np.zeros(n) for f in MCPARTICLE_FIELDS if f != "charge"}
    cols.update(pid=np.full(n, 211), mother=np.full(n, -1), status=np.ones(n))
    cols.update({f: np.full(n, np.nan) for f in ("end_vx", "end_vy", "end_vz", "end_vt")})
    cols.update(
        e=np.full(n, np.hypot(990.0, 139.57)), mass=np.full(n, 139.57), pz=np.full(n, 990.0)
    )
    cols.update(over)
    return cols


def test_nan_momentum_names_event_particle_and_field():
    px = np.zeros(5)
    px[3] = np.nan
    with pytest.raises(
        BadEventError, match=r"event 11 in f\.hepmc: mcparticles\.px is nan for particle 1"
    ):
        make_batch(
            run=0,
            event=[10, 11],
            n_collisions=[1, 1],
            counts=[2, 3],
            particles=_columns(5, px=px),
            origin="f.hepmc",
        )


def test_inf_end_vertex_rejected_nan_allowed():
    end = np.full(2, np.nan)
    make_batch(run=0, event=[0], n_collisions=[1], counts=[2], particles=_columns(2, end_vz=end))
    end[1] = np.inf
    with pytest.raises(BadEventError, match="end_vz is inf"):
        make_batch(
            run=0, event=[0], n_collisions=[1], counts=[2], particles=_columns(2, end_vz=end)
        )


def test_events_without_particles_are_kept():
    batch = make_batch(
        run=0, event=[0, 1, 2], n_collisions=[1, 1, 1], counts=[0, 2, 0], particles=_columns(2)
    )
    assert ak.num(batch.mcparticles).tolist() == [0, 2, 0]


def test_drop_unknown_reattaches_daughters_to_grandmother():
    # event 0: 0=B, 1=unknown (child of 0), 2=child of 1, 3=child of 2; event 1: 0=unknown, 1=child
    pid = np.array([521, 99999999, 421, 211, 99999999, 22])
    mother = np.array([-1, 0, 1, 2, -1, 0])
    counts, cols, dropped = drop_unknown_pids(np.array([4, 2]), {"pid": pid, "mother": mother})
    assert counts.tolist() == [3, 1]
    assert cols["pid"].tolist() == [521, 421, 211, 22]
    assert cols["mother"].tolist() == [-1, 0, 1, -1]
    assert dropped == {99999999: 2}


def test_make_batch_checks_columns():
    cols = _columns(2)
    del cols["vt"]
    with pytest.raises(ValueError, match=r"missing \['vt'\]"):
        make_batch(run=0, event=[0], n_collisions=[1], counts=[2], particles=cols)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"mother": [-1, 5]}, r"event 0: mcparticles.mother is 5 \(the event has 2 particles\)"),
        ({"mother": [0, -1]}, "mcparticles.mother is 0"),  # its own mother
        ({"status": [1, 999]}, r"mcparticles.status is 999 \(1 = final, 2 = decayed\)"),
        ({"collision": [0, 1]}, r"mcparticles.collision is 1 \(n_collisions 1\)"),
        ({"px": [0.0, 300.0]}, "e, px, py, pz and mass disagree"),
    ],
)
def test_event_model_rules(override, match):
    cols = _columns(2, **{k: np.asarray(v) for k, v in override.items()})
    with pytest.raises(BadEventError, match=match):
        make_batch(run=0, event=[0], n_collisions=[1], counts=[2], particles=cols)


def test_good_events_before_a_bad_one_are_kept():
    from lamarr_col.event.build import make_batch_until_bad

    px = np.zeros(6)
    px[4] = np.nan
    batch, err = make_batch_until_bad(
        run=0,
        event=[7, 8, 9],
        n_collisions=[1, 1, 1],
        counts=[2, 2, 2],
        particles=_columns(6, px=px),
    )
    assert batch.event.tolist() == [7, 8]
    assert err.event_index == 2
    assert "event 9" in str(err)
