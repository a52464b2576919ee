from __future__ import annotations

import json

import awkward as ak
import numpy as np
import pytest
import uproot

from lamarr_col.errors import ConfigError
from lamarr_col.io.writers import open_writer, partial_path
from lamarr_col.job import generate, read_events
from lamarr_col.sources.base import Source


@pytest.mark.parametrize(
    ("fmt", "name"), [("root", "o.root"), ("rntuple", "o.root"), ("parquet", "o.parquet")]
)
def test_round_trip_all_formats(tmp_path, batch_factory, fmt, name):
    batches = [batch_factory(1, 4, 0), batch_factory(2, 3, 4), batch_factory(3, 0, 7)]
    path = tmp_path / name
    with open_writer(path, {"seed": 5}, format=fmt) as writer:
        for b in batches:
            writer.write(b)
    assert path.exists()
    assert not partial_path(path).exists()
    back = read_events(path)
    assert ak.array_equal(back, ak.concatenate(batches), equal_nan=True)
    assert back.type == ak.concatenate(batches).type


def test_root_layout_and_metadata(tmp_path, batch_factory):
    path = tmp_path / "o.root"
    with open_writer(path, {"seed": 5, "source": {"kind": "test"}}) as writer:
        writer.write(batch_factory(1))
    with uproot.open(path) as f:
        tree = f["events"]
        assert "nmcparticles" in tree.keys()  # noqa: SIM118
        assert "mcparticles_px" in tree.keys()  # noqa: SIM118
        assert tree["run"].typename == "uint32_t"
        meta = json.loads(str(f["metadata"]))
    assert meta["seed"] == 5
    assert meta["complete"] is True
    assert meta["events_written"] == 5


class _Failing(Source):
    kind = "failing"

    def __init__(self, good, exc):
        super().__init__()
        self.good, self.exc = good, exc

    def batches(self, n_events, batch_size, *, seed=0, run=0, first_event=0):
        for b in self.good:
            self.stats.add_batch(b)
            yield b
        raise self.exc

    def metadata(self):
        return {"kind": self.kind}


@pytest.mark.parametrize("fmt", ["root", "parquet"])
def test_failed_run_keeps_partial_file_and_old_output(tmp_path, batch_factory, fmt):
    path = tmp_path / ("o.parquet" if fmt == "parquet" else "o.root")
    path.write_bytes(b"previous output")
    good = [batch_factory(1, 4)]
    with pytest.raises(ValueError, match="broken input") as info:
        generate(_Failing(good, ValueError("broken input")), path, n_events=None, format=fmt)
    assert "4 event(s) written before the error are kept in" in info.value.__notes__[0]
    assert path.read_bytes() == b"previous output"
    partial = partial_path(path)
    if fmt == "parquet":
        back = ak.from_parquet(partial)
    else:
        back = uproot.open(partial)["events"].arrays()
        meta = json.loads(str(uproot.open(partial)["metadata"]))
        assert meta["complete"] is False
        assert meta["summary"]["events"] == 4
    assert len(back) == 4


def test_interrupt_keeps_partial(tmp_path, batch_factory):
    path = tmp_path / "o.root"
    with pytest.raises(KeyboardInterrupt):
        generate(_Failing([batch_factory(1, 2)], KeyboardInterrupt()), path, n_events=None)
    assert not path.exists()
    assert len(uproot.open(partial_path(path))["events"].arrays()) == 2


@pytest.mark.parametrize(
    ("fmt", "name"), [("root", "e.root"), ("rntuple", "e.root"), ("parquet", "e.parquet")]
)
def test_empty_output_is_valid(tmp_path, fmt, name):
    path = tmp_path / name
    with open_writer(path, {}, format=fmt):
        pass
    back = read_events(path)
    assert len(back) == 0
    assert ak.fields(back.mcparticles) == ak.fields(batch_like_empty())


def batch_like_empty():
    from lamarr_col.event import empty_batch

    return empty_batch().mcparticles


def test_bad_writer_options(tmp_path):
    with pytest.raises(ConfigError, match="choose one of root, rntuple, parquet"):
        open_writer(tmp_path / "x", {}, format="csv")
    with pytest.raises(ConfigError, match="does not exist"):
        open_writer(tmp_path / "nodir" / "x.root", {})
    with pytest.raises(ConfigError, match="unknown ROOT compression"):
        open_writer(tmp_path / "x.root", {}, compression="brotli")


def test_memory_is_bounded_by_batch(tmp_path, batch_factory):
    """Writing many batches keeps only one in memory: the file grows, the writer holds nothing."""
    path = tmp_path / "o.root"
    with open_writer(path, {}) as writer:
        for i in range(30):
            writer.write(batch_factory(i, 20, 20 * i))
    back = read_events(path)
    assert len(back) == 600
    assert np.array_equal(back.event.to_numpy(), np.arange(600))
