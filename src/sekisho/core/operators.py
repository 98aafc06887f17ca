"""Who an operator is, whatever the channel (issue 10 "Operators": a second operator's
approval; SECURITY.md case 54): a person, named by their address in ``admin_emails``.

Invariant: every step an operator takes on a recovery case (the pages, the admin API,
the command line) is taken by an :class:`Actor` whose ``operator`` is one normalised
address of ``admin_emails``; the two-person rule compares :attr:`Actor.recorded`, the
person, never the channel, so one person cannot open a case on one channel and approve
it on another.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sekisho.core.addresses import InvalidAddress, normalize_email

#: Every recorded operator starts so; a case recorded otherwise names no person.
PERSON = "operator:"


@dataclass(frozen=True, slots=True)
class Actor:
    """An operator as they claim to be (``operator``, an address) and the channel they
    used: ``pages``, ``api-key:<id>`` or ``cli``."""

    operator: str
    channel: str

    @property
    def recorded(self) -> str:
        """The person, as a case records its opener, approver and canceller."""
        return f"{PERSON}{self.operator}"


def operators(configured: Iterable[str]) -> frozenset[str]:
    """``admin_emails`` in the same normal form as stored addresses (unusable ones dropped)."""
    found = set()
    for address in configured:
        try:
            found.add(normalize_email(address))
        except InvalidAddress:
            continue
    return frozenset(found)


def operator_address(raw: str, known: frozenset[str]) -> str | None:
    """``raw`` normalised, if it is one of the operators ``known``; else None."""
    try:
        address = normalize_email(raw)
    except InvalidAddress:
        return None
    return address if address in known else None
