"""Imports every domain's tables so `metadata` holds the whole model (Alembic, tests)."""

from tonearm.domains.accounts import tables as _accounts
from tonearm.domains.billing import tables as _billing
from tonearm.domains.catalog import tables as _catalog
from tonearm.domains.devices import tables as _devices
from tonearm.domains.entitlements import tables as _entitlements
from tonearm.domains.history import tables as _history
from tonearm.domains.ingest import tables as _ingest
from tonearm.domains.library import tables as _library
from tonearm.domains.player import tables as _player
from tonearm.domains.recs import tables as _recs
from tonearm.domains.sharing import tables as _sharing
from tonearm.kernel import changes as _changes
from tonearm.kernel.db import metadata
from tonearm.workers import tables as _jobs

__all__ = ["metadata"]
_ = (
    _accounts,
    _billing,
    _catalog,
    _changes,
    _devices,
    _entitlements,
    _history,
    _ingest,
    _library,
    _player,
    _recs,
    _sharing,
    _jobs,
)
