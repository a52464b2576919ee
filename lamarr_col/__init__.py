"""lamarr_col: a columnar flash simulation of an LHCb-like detector over Awkward arrays.

Public API: :func:`open_source` (gun, Pythia8, HepMC, ntuples), :func:`generate` (a source into
a file), :func:`read_events` (a file into an ``ak.Array``), and the :mod:`lamarr_col.event` model.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from lamarr_col import event
from lamarr_col.errors import ConfigError, InputError, LamarrError
from lamarr_col.job import RunSummary, generate, read_events
from lamarr_col.sources.open import open_source

try:
    __version__ = version("lamarr_col")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
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
