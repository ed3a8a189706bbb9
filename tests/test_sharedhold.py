"""The GC pause a sync holds: the first holder disables the collector, the last one undoes it.

The switch interval's hold (the same SharedHold) is tested in test_sync_reads.py.
"""

from __future__ import annotations

import gc

from thv_registry.sync.gcpause import gc_paused


def test_gc_pause_nests_and_the_last_holder_enables_the_collector_again() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer holder still holds it
    assert gc.isenabled()


def test_gc_pause_leaves_a_collector_disabled_before_it_disabled() -> None:
    gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_hold_is_released_when_its_block_raises() -> None:
    try:
        with gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
