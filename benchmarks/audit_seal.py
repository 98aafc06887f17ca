"""Audit chain seals on PostgreSQL with 1 and 2 processes: how often a process's
remembered head was moved or held by another writer (a *miss*: the one-statement seal
inserted nothing, and the transaction read a head), and the CPU each seal costs the
writing processes (``time.process_time``, all threads; PostgreSQL's own CPU is not in
it). Each process runs ``--threads`` threads, each committing ``--transactions``
transactions of one audit event, all processes starting together, on a fresh database.

    .venv/bin/python -m benchmarks.audit_seal [--processes 1 2] [--rounds 3]
    PYTHONPATH=/tmp/ch-old/src .venv/bin/python -m benchmarks.audit_seal   # another tree

Counts come from wrapping the module's functions, so the same script counts any
version that seals through ``append`` / ``_advance`` / ``_take_head``. Prints, per
round and number of processes: seals, misses, reads, misses per seal, CPU ms per seal;
then the medians.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import psycopg

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.store import audit_chain
from sekisho.store.database import Database, make_engine
from sekisho.store.migrate import upgrade

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
KEY = "benchmark-secret-key-0123456789abcdef0123456789"


class Counts:
    """Calls of the sealing functions in this process (one lock-free counter each: the
    GIL makes ``+=`` on these small ints exact enough for a benchmark's tally)."""

    def __init__(self) -> None:
        self.seals = self.misses = self.reads = 0

    def wrap(self) -> None:
        append, advance, take_head = (
            audit_chain.append,
            audit_chain._advance,
            audit_chain._take_head,
        )

        def counted_append(*args: Any, **kwargs: Any) -> None:
            self.seals += 1
            append(*args, **kwargs)

        def counted_advance(*args: Any, **kwargs: Any) -> Any:
            moved = advance(*args, **kwargs)
            self.misses += moved is None
            return moved

        def counted_take_head(*args: Any, **kwargs: Any) -> Any:
            self.reads += 1
            return take_head(*args, **kwargs)

        audit_chain.append = counted_append
        audit_chain._advance = counted_advance
        audit_chain._take_head = counted_take_head


def writer(url: str, threads: int, transactions: int, start: Any, results: Any) -> None:
    counts = Counts()
    counts.wrap()
    database = Database(make_engine(url), Keyring(KEY))

    def write(thread: int) -> None:
        for n in range(transactions):
            with database.transaction() as repos:
                repos.audit.append(
                    AuditEvent(
                        event="signin.succeeded",
                        outcome="success",
                        at=datetime.now(UTC),
                        detail={"thread": thread, "n": n},
                    )
                )

    try:
        start.wait()
        began = time.process_time()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(write, range(threads)))
        results.put((time.process_time() - began, counts.seals, counts.misses, counts.reads))
    finally:
        database.dispose()


def run(processes: int, threads: int, transactions: int) -> dict[str, float]:
    name = f"sekisho_seal_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            audit_chain.open_chain(connection, Database(engine, Keyring(KEY)).seal)
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(processes), context.Queue()
        workers = [
            context.Process(target=writer, args=(url, threads, transactions, start, results))
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        done = [results.get() for _ in workers]
        for worker in workers:
            worker.join()
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT count(*) FROM audit_events").scalar()
        verdict = audit_chain.verify_chain(engine, Database(engine, Keyring(KEY)).seal)
        engine.dispose()
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    seals = sum(row[1] for row in done)
    if stored != processes * threads * transactions or not verdict.intact:
        raise SystemExit(f"{stored} events stored, verify: {verdict.reason}")
    return {
        "seals": seals,
        "misses": sum(row[2] for row in done),
        "reads": sum(row[3] for row in done),
        "cpu_ms_per_seal": 1000 * sum(row[0] for row in done) / seals,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--transactions", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows: dict[int, list[dict[str, float]]] = {n: [] for n in args.processes}
    for round_ in range(args.rounds):
        for processes in args.processes:
            row = run(processes, args.threads, args.transactions)
            rows[processes].append(row)
            print(
                f"round {round_ + 1}, {processes} process(es): {row['seals']} seals, "
                f"{row['misses']} misses ({row['misses'] / row['seals']:.3f} per seal), "
                f"{row['reads']} reads, {row['cpu_ms_per_seal']:.3f} ms CPU per seal",
                flush=True,
            )
    for processes, runs in rows.items():
        print(
            f"median, {processes} process(es): "
            f"{statistics.median(r['misses'] / r['seals'] for r in runs):.3f} misses per seal, "
            f"{statistics.median(r['reads'] / r['seals'] for r in runs):.3f} reads per seal, "
            f"{statistics.median(r['cpu_ms_per_seal'] for r in runs):.3f} ms CPU per seal"
        )


if __name__ == "__main__":
    main()
