"""A process's known audit chain heads (``sekisho.store.audit_chain.KnownHeads``): which
head a transaction takes, what goes back after its commit, and what a read avoids."""

from __future__ import annotations

from sekisho.core.audit_chain import Head
from sekisho.store.audit_chain import SPREAD, KnownHeads


def _head(chain: int, seq: int) -> Head:
    return Head(seq=seq, hash=f"h{seq}", mac=f"m{seq}", chain=chain)


def test_a_head_settled_late_never_replaces_a_newer_one_of_its_chain() -> None:
    """Two transactions sealed chain 3 one after the other; the first one's thread
    settles last. The set keeps the newer head, so the next seal does not miss."""
    heads = KnownHeads()
    first, second = heads.lease(), heads.lease()
    first.left, second.left = _head(3, 5), _head(3, 6)
    second.settle()
    first.settle()
    assert heads.lease().take() == _head(3, 6)


def test_a_chain_in_use_is_avoided_until_its_lease_ends_even_after_a_rollback() -> None:
    heads = KnownHeads(lambda: 8)
    for chain in (9, 8):
        lease = heads.lease()
        lease.left = _head(chain, 1)
        lease.settle()
    taker = heads.lease()
    assert taker.take() == _head(8, 1)  # the starting chain first
    reader = heads.lease()
    reader.read(2, missed=False)
    assert heads.avoided() == [2, 8, 9]
    taker.release()  # rolled back: no head goes back, the chain is free again
    reader.left = _head(2, 1)
    reader.settle()
    reader.release()
    assert heads.avoided() == [2, 9]
    assert (heads.seals, heads.misses, heads.reads) == (1, 0, 1)


def test_processes_start_spread_over_the_chains() -> None:
    assert sorted(SPREAD) == list(range(16))
    assert SPREAD[:4] == (0, 8, 4, 12)


def test_a_read_reserves_the_first_chain_neither_known_nor_used_from_the_start() -> None:
    """The reserved chain is busy at once, so a read of another transaction of the
    process started meanwhile does not prefer it too."""
    heads = KnownHeads(lambda: 8)
    lease = heads.lease()
    lease.left = _head(8, 1)
    lease.settle()
    first, second = heads.lease(), heads.lease()
    assert first.reserve() == (9, [8])
    assert second.reserve() == (10, [8, 9])
    first.release()
    assert heads.avoided() == [8, 10]
