"""A claim made as the worker is stopped is still given back (``claim_off_the_loop``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from sekisho.store.lease_queue import claim_off_the_loop
from tests.support.loop import run_async


def _stopped_while_claiming(outcome: Callable[[], list[int]]) -> list[list[int]]:
    """Cancel the worker while its claim runs on its thread, then let the claim end with
    ``outcome``; what was given back. The cancellation always goes on."""
    claiming = threading.Event()
    finish_claim = threading.Event()
    given_back: list[list[int]] = []

    def claim() -> list[int]:
        claiming.set()
        finish_claim.wait(timeout=30)
        return outcome()

    async def give_back(claimed: list[int]) -> None:
        given_back.append(claimed)

    async def stop_while_claiming() -> None:
        worker = asyncio.create_task(claim_off_the_loop(claim, give_back))
        await asyncio.to_thread(claiming.wait, 30)
        worker.cancel()
        await asyncio.sleep(0)
        assert given_back == []  # the claim is still running on its thread
        finish_claim.set()
        with pytest.raises(asyncio.CancelledError):
            await worker

    run_async(stop_while_claiming())
    return given_back


def test_a_claim_cancelled_on_the_loop_commits_and_is_given_back() -> None:
    assert _stopped_while_claiming(lambda: [1, 2]) == [[1, 2]]


def test_a_claim_that_fails_while_cancelled_gives_nothing_back() -> None:
    def fail() -> list[int]:
        raise RuntimeError("the database went away")

    assert _stopped_while_claiming(fail) == []


def test_an_uncancelled_claim_is_returned() -> None:
    async def give_back(claimed: list[int]) -> None:
        raise AssertionError("nothing to give back")

    assert run_async(claim_off_the_loop(lambda: [3], give_back)) == [3]
