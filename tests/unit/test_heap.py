"""``heap.settle``: what the process built is frozen, young collections are spaced out,
and cycles made afterwards are still collected. Each check runs in a process of its own:
a frozen object is never collected, so the test process itself must not settle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from sekisho.heap import YOUNGEST_THRESHOLD


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_settling_freezes_the_built_heap_and_keeps_collecting_cycles() -> None:
    out = _run(
        """
        import gc, weakref
        from sekisho import heap

        class Node:
            pass

        built = [Node() for _ in range(1000)]
        heap.settle()
        frozen = gc.get_freeze_count()
        node = Node()
        node.self = node
        gone = weakref.ref(node)
        del node
        gc.collect()
        print(frozen >= 1000, gc.get_threshold()[0], gone() is None)
        """
    )
    assert out == f"True {YOUNGEST_THRESHOLD} True"


def test_a_started_server_app_settles_and_an_app_among_many_does_not(tmp_path: Path) -> None:
    out = _run(
        f"""
        import asyncio, gc
        from sekisho.app import create_app
        from tests.support.server import settings_for

        async def start(settle_heap, name):
            settings = settings_for(f"sqlite:///{tmp_path}/" + name + ".db", 1, 8000, mail_worker=False)
            app = create_app(settings, settle_heap=settle_heap)
            async with app.router.lifespan_context(app):
                return gc.get_freeze_count(), gc.get_threshold()[0]

        default = gc.get_threshold()[0]
        print(default, *asyncio.run(start(False, "many")), *asyncio.run(start(True, "one")))
        """
    )
    default, before, unchanged, frozen, threshold = map(int, out.split())
    assert (before, unchanged) == (0, default)
    assert frozen > 50_000
    assert threshold == YOUNGEST_THRESHOLD
