"""Running a source into an output file: the job behind ``lamarr-col generate``."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import awkward as ak

from lamarr_col.event.schema import SCHEMA_VERSION
from lamarr_col.io.writers import EventWriter, check_output, open_writer
from lamarr_col.sources.base import Source

__all__ = ["RunSummary", "generate", "read_events"]


@dataclass
class RunSummary:
    """What a run did (printed by the CLI and stored in the output's metadata)."""

    output: str
    events: int = 0
    particles: int = 0
    wall_time_s: float = 0.0
    unknown_pids_dropped: dict[str, int] = field(default_factory=dict)
    complete: bool = False

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_time_s if self.wall_time_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_s": self.events_per_s}


def _metadata(
    source: Source,
    seed: int,
    run: int,
    first_event: int,
    settings: dict[str, Any],
    job: str = "generate",
) -> dict[str, Any]:
    from lamarr_col import __version__

    return {
        "package": "lamarr_col",
        "version": __version__,
        "schema_version": SCHEMA_VERSION,
        "job": job,
        "seed": seed,
        "run": run,
        "first_event": first_event,
        "source": source.metadata(),
        "settings": settings,
        "created_unix": time.time(),
    }


def generate(
    source: Source,
    output: str | os.PathLike[str],
    *,
    n_events: int | None,
    batch_size: int | None = None,
    seed: int = 0,
    run: int = 0,
    first_event: int = 0,
    format: str | None = None,
    compression: str = "zstd",
    settings: dict[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
    step: Callable[[ak.Array], ak.Array] | None = None,
    job: str = "generate",
) -> RunSummary:
    """Stream ``n_events`` from ``source`` into ``output`` (see :mod:`lamarr_col.io.writers`).

    ``batch_size`` defaults to the source's ``default_batch_size``. ``step``, when given, maps
    each batch to the batch that is written (e.g. the detailed simulation); ``job`` names the
    job in the file's metadata.

    On an exception the events written so far are kept in ``<output>.partial`` (a valid file)
    and the exception propagates with a note saying so.
    """
    summary = RunSummary(output=str(output))
    unknown_before = Counter(source.stats.unknown_pids)  # a source may be reused across runs
    metadata = _metadata(source, seed, run, first_event, settings or {}, job)
    check_output(output, format=format, compression=compression)  # fail before any work
    writer: EventWriter | None = None  # opened with the first batch: no file if setup fails
    start = time.perf_counter()
    try:
        size = batch_size or source.default_batch_size
        batches = source.batches(n_events, size, seed=seed, run=run, first_event=first_event)
        for generated in batches:
            batch = generated if step is None else step(generated)
            if writer is None:
                writer = open_writer(output, metadata, format=format, compression=compression)
            writer.write(batch)
            summary.events += len(batch)
            summary.particles += int(ak.count(batch.mcparticles.pid))
            if progress is not None:
                progress(len(batch))
    except BaseException as err:
        summary.wall_time_s = time.perf_counter() - start
        _fill(summary, source, unknown_before)
        if writer is None:
            err.add_note("no event was written")
        else:
            path = writer.close(complete=False, summary=summary.as_dict())
            err.add_note(
                f"{writer.events_written} event(s) written before the error are kept in {path}"
            )
        raise
    if writer is None:  # a source without events still gives a valid, empty file
        writer = open_writer(output, metadata, format=format, compression=compression)
    summary.wall_time_s = time.perf_counter() - start
    summary.complete = True
    _fill(summary, source, unknown_before)
    summary.output = str(writer.close(complete=True, summary=summary.as_dict()))
    return summary


def _fill(summary: RunSummary, source: Source, unknown_before: Counter[int]) -> None:
    dropped = source.stats.unknown_pids - unknown_before
    summary.unknown_pids_dropped = {str(k): v for k, v in sorted(dropped.items())}


def read_events(path: str | os.PathLike[str], n_events: int | None = None) -> ak.Array:
    """All events (or the first ``n_events``) of an output or input file, as one ``ak.Array``."""
    from lamarr_col.sources.open import open_source

    source = open_source(str(Path(path)))
    batches = list(source.batches(n_events, 10_000))
    if not batches:
        from lamarr_col.event.build import empty_batch

        return empty_batch()
    return ak.concatenate(batches) if len(batches) > 1 else batches[0]
