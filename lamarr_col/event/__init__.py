"""The event data model: schema, PDG table, batch assembly and vector views."""

from lamarr_col.event.build import BadEventError, drop_unknown_pids, empty_batch, make_batch
from lamarr_col.event.pdg import PdgTable, UnknownParticleError, pdg_table
from lamarr_col.event.schema import (
    COLLECTIONS,
    EVENT_FIELDS,
    MCPARTICLE_FIELDS,
    SCHEMA_VERSION,
    STATUS_DECAYED,
    STATUS_FINAL,
    Field,
)
from lamarr_col.event.vectors import momenta, origins

__all__ = [
    "COLLECTIONS",
    "EVENT_FIELDS",
    "MCPARTICLE_FIELDS",
    "SCHEMA_VERSION",
    "STATUS_DECAYED",
    "STATUS_FINAL",
    "BadEventError",
    "Field",
    "PdgTable",
    "UnknownParticleError",
    "drop_unknown_pids",
    "empty_batch",
    "make_batch",
    "momenta",
    "origins",
    "pdg_table",
]
