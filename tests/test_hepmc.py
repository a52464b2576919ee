"""HepMC2/HepMC3 ASCII source: values, units, LHCb status codes, grouping, broken files."""

from __future__ import annotations

import gzip
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from lamarr_col.errors import ConfigError, InputError
from lamarr_col.event.build import BadEventError
from lamarr_col.event.pdg import SPEED_OF_LIGHT
from lamarr_col.sources.hepmc import HepMCSource
from lamarr_col.sources.hepmc_write import GenEventColumns, random_collision, write_hepmc

FORMATS = ("HepMC2", "HepMC3")
NO_PARENT = (-1, -1)
FROM_BEAMS = (0, 1)

# ---------------------------------------------------------------- factories


def _on_shell(p4, mass) -> np.ndarray:
    """Four-momenta with the energy recomputed from the momentum and the mass (GeV)."""
    p4 = np.array(p4, dtype=np.float64)
    p4[:, 3] = np.sqrt(np.sum(p4[:, :3] ** 2, axis=1) + np.asarray(mass) ** 2)
    return p4


def known_collision(number: int, shift: float = 0.0) -> GenEventColumns:
    """A collision in GeV and cm whose every kept value the tests know.

    Rows: 0, 1 beams (4); 2 gluon (3); 3 pi+ (1); 4 D0 (888) -> 5 K- (999), 6 pi+ (999);
    7 pi0 (2) -> 8, 9 gamma (1); 10 string (11) -> 11 pi- (1); 12 B0 (889) -> 13 mu+ (999).
    """
    rows = [
        (2212, 4, (0, 0, 6800, 6800), 0.938, NO_PARENT, (0, 0, 0, 0)),
        (2212, 4, (0, 0, -6800, 6800), 0.938, NO_PARENT, (0, 0, 0, 0)),
        (21, 3, (0.1, 0.2, 5, 5.01), 0.0, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (211, 1, (1.0 + shift, 2.0, 30.0, 30.09), 0.13957, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (421, 888, (0.5, 0.5, 20.0, 20.1), 1.86484, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (-321, 999, (0.2, 0.3, 12.0, 12.02), 0.49368, (4, 4), (0.2, 0.3, 3.5, 4.6)),
        (211, 999, (0.3, 0.2, 8.0, 8.01), 0.13957, (4, 4), (0.2, 0.3, 3.5, 4.6)),
        (111, 2, (0.1, 0.1, 3.0, 3.01), 0.13498, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (22, 1, (0.05, 0.05, 1.0, 1.0025), 0.0, (7, 7), (0.1, 0.2, 3.0, 4.0)),
        (22, 1, (0.05, 0.05, 2.0, 2.0012), 0.0, (7, 7), (0.1, 0.2, 3.0, 4.0)),
        (92, 11, (0.0, 0.0, 50.0, 60.0), 10.0, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (-211, 1, (-1.0, -1.0, 40.0, 40.03), 0.13957, (10, 10), (0.1, 0.2, 3.0, 4.0)),
        (511, 889, (2.0, 1.0, 100.0, 100.16), 5.27966, FROM_BEAMS, (0.1, 0.2, 3.0, 4.0)),
        (-13, 999, (1.0, 0.5, 50.0, 50.01), 0.10566, (12, 12), (0.3, 0.4, 4.0, 5.2)),
    ]
    pid, status, p4, mass, parents, vertex = zip(*rows, strict=True)
    return GenEventColumns(
        number=number,
        pid=np.array(pid, dtype=np.int32),
        status=np.array(status, dtype=np.int32),
        p4=_on_shell(p4, mass),
        mass=np.array(mass),
        parents=np.array(parents),
        vertex=np.array(vertex, dtype=np.float64),
    )


#: kept rows of known_collision, in order, with their event-model status and mother
KEPT_ROWS = [3, 4, 5, 6, 7, 8, 9, 11, 12, 13]
KEPT_STATUS = [1, 2, 1, 1, 2, 1, 1, 1, 2, 1]
KEPT_MOTHER = [-1, -1, 1, 1, -1, 4, 4, -1, -1, 8]


def simple_collision(number: int, pids=(211,), status=None, parents=None) -> GenEventColumns:
    """Two beams and the given particles (from the beams unless ``parents`` says otherwise)."""
    n = len(pids)
    status = [1] * n if status is None else list(status)
    parents = [FROM_BEAMS] * n if parents is None else list(parents)
    p4 = [(0, 0, 6800, 6800), (0, 0, -6800, 6800)] + [
        (0.1 * (i + 1), 0.2, 10.0 + i, 10.01 + i) for i in range(n)
    ]
    return GenEventColumns(
        number=number,
        pid=np.array([2212, 2212, *pids], dtype=np.int32),
        status=np.array([4, 4, *status], dtype=np.int32),
        p4=_on_shell(p4, [0.938, 0.938] + [0.13957] * n),
        mass=np.array([0.938, 0.938] + [0.13957] * n),
        parents=np.array([NO_PARENT, NO_PARENT, *parents]),
        vertex=np.tile([0.0, 0.0, 1.0, 1.0], (n + 2, 1)),
    )


def gauss_file(path: Path, collisions_per_crossing, fmt="HepMC2", seed=1, n_hadrons=20) -> Path:
    """Random Gauss-like crossings (collisions numbered 1..n in each) in MeV and mm."""
    rng = np.random.default_rng(seed)
    events = [
        random_collision(rng, k, n_hadrons)
        for n in collisions_per_crossing
        for k in range(1, n + 1)
    ]
    return write_hepmc(path, events, format=fmt, momentum_unit="MEV", length_unit="MM")


def assert_same(got: ak.Array, expected: ak.Array) -> None:
    """Equal events, NaN equal to NaN (end vertices of stable particles)."""
    assert len(got) == len(expected)
    for name in ("run", "event", "n_collisions"):
        assert got[name].to_list() == expected[name].to_list()
    assert ak.num(got.mcparticles).to_list() == ak.num(expected.mcparticles).to_list()
    for name in got.mcparticles.fields:
        np.testing.assert_array_equal(
            ak.flatten(got.mcparticles[name]).to_numpy(),
            ak.flatten(expected.mcparticles[name]).to_numpy(),
        )


def read_all(path: Path, batch_size: int = 1000, **kw) -> ak.Array:
    batches = list(HepMCSource(path, **kw.pop("source", {})).batches(None, batch_size, **kw))
    return ak.concatenate(batches) if batches else batches


# ---------------------------------------------------------------- values and units


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_known_values(tmp_path, fmt):
    path = write_hepmc(
        tmp_path / "known.dat",
        [known_collision(1), known_collision(2, shift=0.5), known_collision(1)],
        format=fmt,
        momentum_unit="GEV",
        length_unit="CM",
    )
    source = HepMCSource(path)
    batch = ak.concatenate(list(source.batches(None, 10, run=7)))
    assert source.format == fmt
    assert batch.run.to_list() == [7, 7]
    assert batch.event.to_list() == [0, 1]  # Gauss files hold no crossing number
    assert batch.n_collisions.to_list() == [2, 1]

    ref = known_collision(1)
    first = batch[0].mcparticles
    n = len(KEPT_ROWS)
    assert len(first) == 2 * n
    assert len(batch[1].mcparticles) == n
    assert first.collision.to_list() == [0] * n + [1] * n
    # HepMC2 files list particles vertex by vertex: find each reference row by pid and pz
    got = first[:n]
    key = list(zip(got.pid.to_list(), np.round(got.pz.to_numpy()).tolist(), strict=True))
    where = [key.index((int(ref.pid[r]), round(1000 * ref.p4[r, 2]))) for r in KEPT_ROWS]
    got = got[where]
    assert got.status.to_list() == KEPT_STATUS
    mother = [where.index(m) if m >= 0 else -1 for m in got.mother.to_list()]
    assert mother == KEPT_MOTHER
    # the second collision's mothers point into the second collision
    second = first[n:]
    assert ak.all((second.mother == -1) | (second.mother >= n))
    # GeV -> MeV, cm -> mm, c*t in cm -> ns
    np.testing.assert_allclose(got.px.to_numpy(), 1000 * ref.p4[KEPT_ROWS, 0])
    np.testing.assert_allclose(got.e.to_numpy(), 1000 * ref.p4[KEPT_ROWS, 3])
    np.testing.assert_allclose(got.mass.to_numpy(), 1000 * ref.mass[KEPT_ROWS])
    np.testing.assert_allclose(got.vz.to_numpy(), 10 * ref.vertex[KEPT_ROWS, 2])
    np.testing.assert_allclose(got.vt.to_numpy(), 10 * ref.vertex[KEPT_ROWS, 3] / SPEED_OF_LIGHT)
    assert 1500.0 in second.px.to_list()  # the shifted pi+ of the second collision
    # end vertices: the D0's is where its daughters start, a pi+ has none
    d0, pi = got[1], got[0]
    assert (d0.end_vx, d0.end_vy, d0.end_vz) == pytest.approx((2.0, 3.0, 35.0))
    assert d0.end_vt == pytest.approx(46.0 / SPEED_OF_LIGHT)
    assert np.isnan([pi.end_vx, pi.end_vy, pi.end_vz, pi.end_vt]).all()
    assert got.charge.to_list()[:3] == [1.0, 0.0, -1.0]
    assert source.stats.events == 2
    assert source.stats.particles == 3 * n


def test_vertex_without_position_inherits(tmp_path):
    # hand-written HepMC3: vertex -2 has no position, so HepMC3 places it at its parent's
    text = "\n".join(  # noqa: FLY002
        [
            "HepMC::Version 3.02.05",
            "HepMC::Asciiv3-START_EVENT_LISTING",
            "E 5 2 4",
            "U MEV MM",
            "P 1 0 2212 0 0 6800000 6800000 938.27 4",
            "P 2 0 2212 0 0 -6800000 6800000 938.27 4",
            "V -1 0 [1,2] @ 1.0 2.0 3.0 4.0",
            "P 3 -1 310 100 0 1000 1121.4300691 497.6 2",
            "V -2 0 [3]",
            "P 4 -2 211 50 0 500 521.5168117 139.57 1",
            "HepMC::Asciiv3-END_EVENT_LISTING",
            "",
        ]
    )
    path = tmp_path / "noposition.hepmc3"
    path.write_text(text)
    batch = read_all(path, source={"group_by": "none"})
    p = batch[0].mcparticles
    assert batch.event.to_list() == [5]
    assert p.pid.to_list() == [310, 211]
    assert p.mother.to_list() == [-1, 0]
    assert p.vx.to_list() == [1.0, 1.0]
    assert p.end_vz.to_list()[0] == 3.0


# ---------------------------------------------------------------- grouping


@pytest.mark.parametrize(
    ("group_by", "events", "n_collisions"),
    [
        ("gauss", [0, 1, 2], [3, 1, 2]),
        ("event_number", [1, 2, 3, 1, 2], [1, 1, 1, 2, 1]),
        ("none", [1, 2, 3, 1, 1, 2], [1] * 6),
    ],
)
def test_grouping(tmp_path, group_by, events, n_collisions):
    numbers = [1, 2, 3, 1, 1, 2]
    path = write_hepmc(tmp_path / "g.hepmc", [simple_collision(k) for k in numbers])
    batch = read_all(path, batch_size=2, source={"group_by": group_by})
    assert batch.event.to_list() == events
    assert batch.n_collisions.to_list() == n_collisions
    collisions = ak.to_list(batch.mcparticles.collision)
    assert collisions == [list(range(n)) for n in n_collisions]


@pytest.mark.parametrize("numbers", [[0, 1, 2], [1, 3], [2]])
def test_gauss_numbering_is_checked(tmp_path, numbers):
    path = write_hepmc(tmp_path / "g.hepmc", [simple_collision(k) for k in numbers])
    with pytest.raises(InputError, match="group_by") as err:
        read_all(path, source={"group_by": "gauss"})
    assert str(path) in str(err.value)


def test_gauss_like_pileup_file(tmp_path):
    per_crossing = [7, 1, 3, 12, 1, 1]
    path = gauss_file(tmp_path / "pileup.mc2", per_crossing)
    batch = read_all(path, batch_size=4)
    assert batch.n_collisions.to_list() == per_crossing
    assert batch.event.to_list() == list(range(len(per_crossing)))
    assert ak.max(batch.mcparticles.collision, axis=1).to_list() == [n - 1 for n in per_crossing]
    assert set(ak.flatten(batch.mcparticles.status).to_list()) == {1, 2}
    # mothers point inside the crossing, to a decayed particle of the same collision
    mother = batch.mcparticles.mother
    has = mother >= 0
    parents = batch.mcparticles[ak.where(has, mother, 0)]
    assert ak.all(parents.status[has] == 2)
    assert ak.all(parents.collision[has] == batch.mcparticles.collision[has])


@pytest.mark.parametrize(
    ("numbers", "unit", "expected"),
    [
        ([1, 2, 3, 1, 2, 1], "GEV", "gauss"),  # restarts at 1: Gauss pile-up
        ([1, 2, 3, 4], "MEV", "gauss"),  # one Gauss crossing per file (Lamarr's inputs)
        ([1, 2, 3, 4], "GEV", "none"),  # a generator's numbering
        ([0, 1, 2, 3], "MEV", "none"),
        ([5, 5, 6, 7, 7], "GEV", "event_number"),
        ([10, 11, 13], "MEV", "none"),
        ([0] * 150, "GEV", "none"),  # numbers never set by the writer
        ([0] * 150, "MEV", "none"),
        ([42] * 5, "MEV", "event_number"),  # one Gauss crossing numbered as the LHCb event
    ],
)
def test_auto_grouping(tmp_path, numbers, unit, expected):
    path = write_hepmc(
        tmp_path / "g.hepmc",
        [simple_collision(k) for k in numbers],
        momentum_unit=unit,
        length_unit="MM",
    )
    source = HepMCSource(path)
    assert source.group_by == expected
    assert source.metadata()["group_by"] == expected
    assert len(read_all(path)) > 0


def test_unknown_group_by(tmp_path):
    path = write_hepmc(tmp_path / "g.hepmc", [simple_collision(1)])
    with pytest.raises(ConfigError, match="event_number"):
        HepMCSource(path, group_by="crossing")  # type: ignore[arg-type]


# ---------------------------------------------------------------- files that are not good


@pytest.mark.parametrize(("fmt", "name"), [("HepMC3", "events.root"), ("HepMC2", "x.hepmc3")])
def test_misleading_extension(tmp_path, fmt, name):
    path = write_hepmc(tmp_path / name, [known_collision(1)], format=fmt)
    source = HepMCSource(path)
    assert source.format == fmt
    assert source.metadata() == {
        "kind": "hepmc",
        "path": str(path),
        "format": fmt,
        "group_by": "none",  # one GeV-unit collision: a generator's file, not Gauss
    }
    assert len(read_all(path)[0].mcparticles) == len(KEPT_ROWS)


def test_missing_file(tmp_path):
    path = tmp_path / "nothing.hepmc"
    with pytest.raises(InputError, match="does not exist") as err:
        HepMCSource(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"just some text\nwith lines\n", "not a HepMC"),
        (b"E 1 2 3\nP 1 0 211 0 0 0 0 0 1\n", "not a HepMC"),
        (gzip.compress(b"HepMC::Version 3\nHepMC::Asciiv3-START_EVENT_LISTING\n"), "gzip"),
    ],
)
def test_not_hepmc(tmp_path, content, match):
    path = tmp_path / "input.hepmc"
    path.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        HepMCSource(path)
    assert str(path) in str(err.value)


def test_directory(tmp_path):
    with pytest.raises(InputError, match="not a regular file"):
        HepMCSource(tmp_path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file(tmp_path, fmt):
    per_crossing = [2, 1, 3, 1, 2, 1, 1]
    full_path = gauss_file(tmp_path / "full.dat", per_crossing, fmt=fmt, n_hadrons=8)
    full = read_all(full_path)
    data = full_path.read_bytes()
    footer = data.rstrip().rsplit(b"\n", 1)[-1]
    header = data.index(b"START_EVENT_LISTING") + 20
    cuts = [*np.linspace(header, len(data) - len(footer) - 2, 23).astype(int)]
    cuts += [len(data) - len(footer) - 1, len(data) - 5]  # just before / inside the footer
    for cut in cuts:
        path = tmp_path / f"cut{cut}.dat"
        path.write_bytes(data[:cut])
        got: list[ak.Array] = []
        with pytest.raises(InputError) as err:
            got.extend(HepMCSource(path).batches(None, 2))
        message = str(err.value)
        assert str(path) in message, message
        assert "truncated" in message or "cannot parse" in message, message
        # batches yielded before the error are complete crossings, identical to the full read
        kept = ak.concatenate(got) if got else full[:0]
        assert len(kept) < len(full)
        assert_same(kept, full[: len(kept)])
        if got:
            assert (
                f"{len(kept)} complete event(s) were read, the last one numbered {len(kept) - 1}"
                in message
            )


def test_corrupt_line(tmp_path):
    path = write_hepmc(tmp_path / "c.hepmc", [simple_collision(k) for k in (1, 1, 1)])
    lines = path.read_text().splitlines(keepends=True)
    p_lines = [i for i, line in enumerate(lines) if line.startswith("P ")]
    lines[p_lines[-1]] = "P 1 2 3\n"
    path.write_text("".join(lines))
    got = []
    with pytest.raises(InputError, match="cannot parse GenEvent #3") as err:
        got.extend(HepMCSource(path).batches(None, 1))
    # GenEvent #3 might have continued crossing 1, so only crossing 0 is known complete
    assert [b.event.to_list() for b in got] == [[0]]
    assert "1 complete event(s) were read, the last one numbered 0" in str(err.value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_nan_momentum(tmp_path, fmt):
    bad = simple_collision(42, pids=(211, 321))
    bad.p4[3, 0] = np.nan
    path = write_hepmc(tmp_path / "nan.hepmc", [simple_collision(41), bad], format=fmt)
    with pytest.raises(BadEventError, match="event 42") as err:
        read_all(path, source={"group_by": "none"})
    assert str(path) in str(err.value)
    assert "px" in str(err.value)


# ---------------------------------------------------------------- content policy


def test_unknown_pid_dropped_and_counted(tmp_path):
    # 9999999 is not in the PDG table: dropped, its daughter re-attached to its mother
    cols = simple_collision(
        1,
        pids=(511, 9999999, 211, 9999999),
        status=(2, 2, 1, 1),
        parents=(FROM_BEAMS, (2, 2), (3, 3), FROM_BEAMS),
    )
    path = write_hepmc(tmp_path / "u.hepmc", [cols])
    source = HepMCSource(path)
    batch = ak.concatenate(list(source.batches(None, 5)))
    p = batch[0].mcparticles
    assert p.pid.to_list() == [511, 211]
    assert p.mother.to_list() == [-1, 0]
    assert source.stats.unknown_pids == {9999999: 2}
    assert source.stats.as_dict()["unknown_pids_dropped"] == {"9999999": 2}


@pytest.mark.parametrize("fmt", FORMATS)
def test_events_without_particles(tmp_path, fmt):
    only_dropped = simple_collision(1, pids=(21,), status=(3,))
    events = [
        only_dropped,
        simple_collision(1),
        only_dropped,
        simple_collision(2, pids=(92,), status=(11,)),
    ]
    path = write_hepmc(tmp_path / "empty.hepmc", events, format=fmt)
    batch = read_all(path, batch_size=2)
    assert ak.num(batch.mcparticles).to_list() == [0, 1, 0]
    assert batch.n_collisions.to_list() == [1, 1, 2]


def test_batch_size_independence(tmp_path):
    path = gauss_file(tmp_path / "b.hepmc", [3, 1, 2, 5, 1, 1, 2, 4, 1], fmt="HepMC3")
    reference = read_all(path, batch_size=1000)
    for batch_size in (1, 2, 4, 7):
        source = HepMCSource(path)
        batches = list(source.batches(None, batch_size))
        assert [len(b) for b in batches[:-1]] == [batch_size] * (len(batches) - 1)
        assert_same(ak.concatenate(batches), reference)
        assert source.stats.events == 9


def test_first_event_and_n_events(tmp_path):
    path = gauss_file(tmp_path / "s.hepmc", [2, 1, 3, 1, 2, 1])
    full = read_all(path)
    source = HepMCSource(path)
    part = ak.concatenate(list(source.batches(3, 2, first_event=2)))
    assert_same(part, full[2:5])
    assert part.event.to_list() == [2, 3, 4]
    assert source.stats.events == 3
    rest = ak.concatenate(list(HepMCSource(path).batches(100, 4, first_event=4)))
    assert rest.event.to_list() == [4, 5]
    assert list(HepMCSource(path).batches(None, 4, first_event=6)) == []
    with pytest.raises(ValueError, match="batch size"):
        list(HepMCSource(path).batches(None, 0))
    with pytest.raises(ValueError, match="first event"):
        list(HepMCSource(path).batches(None, 1, first_event=-1))


# ---------------------------------------------------------------- review findings


def test_unreadable_number_is_an_error_not_a_zero(tmp_path):
    """The HepMC2 parser reads 'zz' as 0; the on-shell check catches the lost component."""
    path = write_hepmc(
        tmp_path / "g.hepmc", [simple_collision(1, pids=(211, 321))], format="HepMC2"
    )
    lines = path.read_text().splitlines()
    i = [k for k, line in enumerate(lines) if line.startswith("P ")][3]
    fields = lines[i].split()
    fields[3] = "zz"  # px of the kaon (P barcode pid px ...)
    lines[i] = " ".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=r"event 1 in .*g\.hepmc: mcparticles e, px, py, pz and mass"
    ):
        read_all(path, source={"group_by": "none"})


def test_parse_failure_keeps_the_complete_event_before_it(tmp_path):
    path = write_hepmc(tmp_path / "g.hepmc", [simple_collision(k) for k in (1, 2, 3)])
    lines = path.read_text().splitlines()
    starts = [k for k, line in enumerate(lines) if line.startswith("E ")]
    lines[starts[1] + 3] = "P garbage"  # inside the second GenEvent
    path.write_text("\n".join(lines) + "\n")
    got, error = _collect(HepMCSource(path, group_by="none"))
    assert "1 complete event" in str(error)
    assert [b.event.to_list() for b in got] == [[1]]


def test_bad_event_keeps_the_good_ones_before_it(tmp_path):
    bad = simple_collision(3)
    bad.p4[2, 0] = np.nan
    path = write_hepmc(tmp_path / "g.hepmc", [simple_collision(1), simple_collision(2), bad])
    got, error = _collect(HepMCSource(path, group_by="none"))
    assert "event 3" in str(error)
    assert [b.event.to_list() for b in got] == [[1, 2]]


def _collect(source: HepMCSource) -> tuple[list[ak.Array], InputError | None]:
    """The batches a source yields before it fails, and its error."""
    got: list[ak.Array] = []
    try:
        got.extend(source.batches(None, 10))
    except InputError as err:
        return got, err
    return got, None
