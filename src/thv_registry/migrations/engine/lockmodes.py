"""PostgreSQL's table lock modes: their names, their order and which conflict. One place.

:mod:`.lockinfo` says which mode a statement takes; :mod:`.lock` names the sessions whose locks
conflict with it (pg_locks spells the modes ``AccessShareLock``; messages use the
documentation's ``ACCESS SHARE``). Source: the PostgreSQL documentation, "Explicit Locking",
table "Conflicting Lock Modes" (``LockConflicts`` in ``lock.c``).
"""

from __future__ import annotations

__all__ = ["LOCK_MODES", "conflicts", "from_server", "rank", "strongest"]

#: the table lock modes, weakest first (index + 1 is the server's lock mode number)
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)

#: for each mode, the numbers (1-based, as in lock.c) of the modes it conflicts with
_CONFLICTING = {
    1: {8},
    2: {7, 8},
    3: {5, 6, 7, 8},
    4: {4, 5, 6, 7, 8},
    5: {3, 4, 6, 7, 8},
    6: {3, 4, 5, 6, 7, 8},
    7: {2, 3, 4, 5, 6, 7, 8},
    8: {1, 2, 3, 4, 5, 6, 7, 8},
}
_CONFLICTS = {
    LOCK_MODES[mode - 1]: frozenset(LOCK_MODES[other - 1] for other in others)
    for mode, others in _CONFLICTING.items()
}
#: pg_locks' spelling -> the documentation's: ``AccessShareLock`` -> ``ACCESS SHARE``
_SERVER_NAMES = {"".join(w.title() for w in m.split()) + "Lock": m for m in LOCK_MODES}


def rank(mode: str) -> int:
    """0 for ``ACCESS SHARE`` up to 7 for ``ACCESS EXCLUSIVE``; ``ValueError`` for another."""
    return LOCK_MODES.index(mode)


def strongest(a: str, b: str) -> str:
    """The stronger of two modes."""
    return max(a, b, key=rank)


def conflicts(wanted: str, held: str) -> bool:
    """True when a lock held in mode ``held`` blocks a request for mode ``wanted``.

    A mode that is not a table lock mode (pg_locks' ``SIReadLock``) blocks nothing.
    """
    return held in _CONFLICTS.get(wanted, ())


def from_server(server_mode: str) -> str:
    """pg_locks' ``AccessShareLock`` -> ``ACCESS SHARE``; another name is returned as it is."""
    return _SERVER_NAMES.get(server_mode, server_mode)
