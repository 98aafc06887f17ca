"""Reading a tiers file (TOML, RFC-less but TOML 1.0 via :mod:`tomllib`) into a
:class:`~sekisho.policy.tiers.Policy`, refusing anything doubtful with its line.

Strict by design: an unknown key, a wrong type, an unknown method or tier, an AAL a
tier's methods can never reach, or a session limit beyond NIST SP 800-63B-4's is an
error, never a silent default; a broken file stops the server from starting.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sekisho.policy.actions import FIELD_TYPES, LANGUAGES, NAME, Action, DetailField
from sekisho.policy.assurance import AAL1, AAL3, LEVELS
from sekisho.policy.tiers import METHODS, OPERATORS, Policy, Rule, StepUp, Tier

TOP_KEYS = ("default_tier", "tiers", "rules", "actions")
ACTION_KEYS = ("title", "details")
FIELD_KEYS = ("type", "label", "currency")
TIER_KEYS = (
    "description",
    "methods",
    "signin_aal",
    "email_recovery",
    "synced_passkeys",
    "attestation",
    "aaguids",
    "idle_timeout",
    "absolute_timeout",
    "step_up",
)
STEP_UP_KEYS = ("aal", "max_age")
RULE_KEYS = ("when", "tier")
ATTESTATION = ("any", "required")
MAX_ABSOLUTE = timedelta(days=30)  # NIST SP 800-63B-4 §2.1.3: AAL1 at most 30 days
_AAGUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_DURATION = re.compile(r"^([1-9][0-9]*)(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_WHEN = re.compile(r"^\s*([a-z][a-z0-9_]{0,63})\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
_INTEGER = re.compile(r"^[+-]?[0-9](_?[0-9])*$")
_FLOAT = re.compile(r"^[+-]?[0-9](_?[0-9])*\.[0-9](_?[0-9])*$")
_SYNTAX_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r'^\s*((?:[A-Za-z0-9_-]+|"[^"]*")(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"))*)\s*=')

Path_ = tuple[str | int, ...]


class PolicyError(ValueError):
    """A tiers file that cannot be used: where (``line``, 0 when unknown) and why."""

    def __init__(self, source: str, line: int, reason: str) -> None:
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")


def load_policy(path: Path) -> Policy:
    """Read and validate the tiers file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(str(path), 0, f"cannot read the file ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise PolicyError(str(path), 0, "the file is not UTF-8 text") from error
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = _SYNTAX_LINE.search(str(error))
        reason = _SYNTAX_LINE.sub("", str(error)).strip()
        raise PolicyError(
            source, int(found.group(1)) if found else 0, f"not valid TOML: {reason}"
        ) from error
    return _Reader(text, source).policy(document)


def parse_duration(raw: object) -> timedelta | None:
    """``"90s"``, ``"15m"``, ``"12h"`` or ``"30d"``; None when it is not one."""
    if not isinstance(raw, str):
        return None
    found = _DURATION.match(raw)
    if found is None:
        return None
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


def _parts(dotted: str) -> list[str]:
    return [
        part.strip().strip('"') for part in re.split(r"\.(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", dotted)
    ]


def locate(text: str, path: Path_) -> int:
    """The line that defines ``path`` (a key, or failing that its table); 0 if unseen.

    Enough of TOML's shapes for a tiers file: ``[table]`` and ``[[array]]`` headers,
    dotted keys, and keys inside inline tables found through their outer key."""
    table: list[str | int] = []
    arrays: dict[tuple[str, ...], int] = {}
    best, best_length = 0, 0
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            names = _parts(header.group(2))
            if header.group(1) == "[[":
                key = tuple(names)
                arrays[key] = arrays.get(key, -1) + 1
                table = [*names, arrays[key]]
            else:
                table = list(names)
            candidate: list[str | int] = table
        else:
            key_match = _KEY.match(line)
            if key_match is None:
                continue
            candidate = [*table, *_parts(key_match.group(1))]
        length = _common(candidate, path)
        if length == len(path) and len(candidate) == len(path):
            return number
        if length == len(candidate) and length > best_length:
            best, best_length = number, length
    return best


def _common(candidate: Sequence[str | int], path: Path_) -> int:
    length = 0
    for mine, theirs in zip(candidate, path, strict=False):
        if mine != theirs:
            break
        length += 1
    return length


class _Reader:
    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source

    def fail(self, path: Path_, reason: str) -> PolicyError:
        return PolicyError(self._source, locate(self._text, path), reason)

    def _table(self, value: object, path: Path_, allowed: Sequence[str]) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{_dotted(path)} must be a table")
        for key in value:
            if key not in allowed:
                raise self.fail(
                    (*path, key),
                    f"unknown key {_dotted((*path, key))!r} (allowed here: {', '.join(allowed)})",
                )
        return value

    def policy(self, document: Mapping[str, Any]) -> Policy:
        self._table(document, (), TOP_KEYS)
        raw_tiers = document.get("tiers")
        if raw_tiers is None:
            raise self.fail((), "the file declares no tiers: add at least one [tiers.NAME] table")
        if not isinstance(raw_tiers, dict) or not raw_tiers:
            raise self.fail(("tiers",), "tiers must hold at least one [tiers.NAME] table")
        tiers = tuple(self.tier(name, raw) for name, raw in raw_tiers.items())
        names = {tier.name for tier in tiers}
        default = document.get("default_tier")
        if default is None:
            raise self.fail(
                (), "default_tier is missing: name the tier of accounts no rule matches"
            )
        if not isinstance(default, str) or default not in names:
            raise self.fail(
                ("default_tier",),
                f"default_tier must name a declared tier ({', '.join(sorted(names))})",
            )
        rules = document.get("rules", [])
        if not isinstance(rules, list):
            raise self.fail(("rules",), "rules must be an array of [[rules]] tables")
        raw_actions = document.get("actions", {})
        if not isinstance(raw_actions, dict):
            raise self.fail(("actions",), "actions must be a table of [actions.NAME] tables")
        actions = tuple(self.action(name, raw) for name, raw in raw_actions.items())
        declared = {action.name for action in actions}
        for tier in tiers:
            for step in tier.step_up:
                if step.action not in declared:
                    raise self.fail(
                        ("tiers", tier.name, "step_up", step.action),
                        f"step_up.{step.action} names an action that is not declared: "
                        f"add an [actions.{step.action}] table with its details",
                    )
        return Policy(
            tiers=tiers,
            default_tier=default,
            rules=tuple(self.rule(index, raw, names) for index, raw in enumerate(rules)),
            source=self._source,
            actions=actions,
        )

    def action(self, name: str, raw: object) -> Action:
        path: Path_ = ("actions", name)
        if not NAME.match(name):
            raise self.fail(path, f"action name {name!r}: use lower-case letters, digits and _")
        table = self._table(raw, path, ACTION_KEYS)
        title = self._words(table, (*path, "title"))
        raw_fields = table.get("details")
        if not isinstance(raw_fields, dict) or not raw_fields:
            raise self.fail(
                (*path, "details"),
                f"actions.{name} needs details: a table of fields, like "
                'amount = { type = "amount", currency = "currency", label = { en = "Amount", '
                'ja = "金額" } }',
            )
        fields = tuple(
            self.detail_field(field, spec, (*path, "details", field))
            for field, spec in raw_fields.items()
        )
        by_name = {field.name: field for field in fields}
        for field in fields:
            if field.type != "amount":
                continue
            currency = by_name.get(field.currency or "")
            if currency is None or currency.type != "currency":
                raise self.fail(
                    (*path, "details", field.name),
                    f"amount {field.name} needs currency = the name of a field of type "
                    '"currency" in the same action',
                )
        return Action(name=name, title=title, fields=fields)

    def detail_field(self, name: str, raw: object, path: Path_) -> DetailField:
        if not NAME.match(name):
            raise self.fail(path, f"field name {name!r}: use lower-case letters, digits and _")
        table = self._table(raw, path, FIELD_KEYS)
        kind = table.get("type")
        if kind not in FIELD_TYPES:
            raise self.fail((*path, "type"), f"type must be one of {', '.join(FIELD_TYPES)}")
        currency = table.get("currency")
        if (currency is not None) != (kind == "amount"):
            raise self.fail(
                (*path, "currency"), "currency is set on amount fields, and only on them"
            )
        if currency is not None and not isinstance(currency, str):
            raise self.fail((*path, "currency"), "currency must name a field")
        return DetailField(
            name=name,
            type=str(kind),
            label=self._words(table, (*path, "label")),
            currency=currency,
        )

    def _words(self, table: Mapping[str, Any], path: Path_) -> dict[str, str]:
        """Text the confirmation page shows, in every language it speaks."""
        raw = table.get(str(path[-1]))
        wanted = " and ".join(LANGUAGES)
        if not isinstance(raw, dict) or set(raw) != set(LANGUAGES):
            raise self.fail(path, f'{path[-1]} needs exactly {wanted}: {{ en = "…", ja = "…" }}')
        for value in raw.values():
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                raise self.fail(path, f"{path[-1]} texts must be 1 to 100 characters")
        return dict(raw)

    def tier(self, name: str, raw: object) -> Tier:
        path: Path_ = ("tiers", name)
        if not NAME.match(name):
            raise self.fail(
                path, f"tier name {name!r}: use lower-case letters, digits and _ (at most 32)"
            )
        table = self._table(raw, path, TIER_KEYS)
        methods = self._methods(table, path)
        signin_aal = self._level(table, (*path, "signin_aal"), default=AAL1)
        description = table.get("description", "")
        if not isinstance(description, str):
            raise self.fail((*path, "description"), "description must be a string")
        email_recovery = self._bool(table, (*path, "email_recovery"), "email" in methods)
        synced = self._bool(table, (*path, "synced_passkeys"), True)
        attestation = table.get("attestation", "any")
        if attestation not in ATTESTATION:
            raise self.fail((*path, "attestation"), 'attestation must be "any" or "required"')
        aaguids = self._aaguids(table, (*path, "aaguids"))
        weak = sorted(methods & {"email", "password"})
        if signin_aal > AAL1 and weak:
            raise self.fail(
                (*path, "signin_aal"),
                f"signin_aal {signin_aal} can never be reached by {' and '.join(weak)} "
                "(AAL1 at most, NIST SP 800-63B-4): remove them from methods or use signin_aal 1",
            )
        if signin_aal == AAL3 and (synced or attestation != "required"):
            raise self.fail(
                (*path, "signin_aal"),
                "signin_aal 3 needs device-bound, attested keys: set synced_passkeys = false "
                'and attestation = "required"',
            )
        if (attestation == "required" or aaguids or not synced) and "passkey" not in methods:
            raise self.fail(
                (*path, "methods"), "passkey rules are set but methods does not allow passkeys"
            )
        if email_recovery and not methods & {"email", "passkey"}:
            raise self.fail(
                (*path, "email_recovery"),
                "email_recovery leads to a session that can only add a passkey, "
                "but methods allows neither passkeys nor email",
            )
        idle = self._duration(table, (*path, "idle_timeout"))
        absolute = self._duration(table, (*path, "absolute_timeout"))
        if absolute is not None and absolute > MAX_ABSOLUTE:
            raise self.fail(
                (*path, "absolute_timeout"),
                "absolute_timeout may be at most 30d (NIST SP 800-63B-4 reauthentication)",
            )
        if idle is not None and absolute is not None and idle > absolute:
            raise self.fail((*path, "idle_timeout"), "idle_timeout is longer than absolute_timeout")
        return Tier(
            name=name,
            description=description,
            methods=methods,
            signin_aal=signin_aal,
            email_recovery=email_recovery,
            synced_passkeys=synced,
            attestation_required=attestation == "required",
            aaguids=aaguids,
            idle_timeout=idle,
            absolute_timeout=absolute,
            step_up=self._step_ups(table.get("step_up", {}), (*path, "step_up")),
        )

    def _methods(self, table: Mapping[str, Any], path: Path_) -> frozenset[str]:
        where = (*path, "methods")
        raw = table.get("methods")
        if raw is None:
            raise self.fail(path, f"{_dotted(path)} has no methods (allowed: {', '.join(METHODS)})")
        if not isinstance(raw, list) or not raw:
            raise self.fail(where, "methods must be a non-empty array of method names")
        for method in raw:
            if method not in METHODS:
                raise self.fail(where, f"unknown method {method!r} (known: {', '.join(METHODS)})")
        if len(set(raw)) != len(raw):
            raise self.fail(where, "methods lists a method twice")
        return frozenset(raw)

    def _level(self, table: Mapping[str, Any], path: Path_, *, default: int) -> int:
        raw = table.get(str(path[-1]), default)
        if isinstance(raw, bool) or raw not in LEVELS:
            raise self.fail(path, f"{path[-1]} must be 1, 2 or 3 (an AAL)")
        return int(raw)

    def _bool(self, table: Mapping[str, Any], path: Path_, default: bool) -> bool:
        raw = table.get(str(path[-1]), default)
        if not isinstance(raw, bool):
            raise self.fail(path, f"{path[-1]} must be true or false")
        return raw

    def _duration(self, table: Mapping[str, Any], path: Path_) -> timedelta | None:
        raw = table.get(str(path[-1]))
        if raw is None:
            return None
        value = parse_duration(raw)
        if value is None:
            raise self.fail(
                path, f'{path[-1]} must be a duration like "90s", "15m", "12h" or "30d"'
            )
        return value

    def _aaguids(self, table: Mapping[str, Any], path: Path_) -> frozenset[str]:
        raw = table.get("aaguids", [])
        if not isinstance(raw, list):
            raise self.fail(path, "aaguids must be an array of AAGUID strings")
        for aaguid in raw:
            if not isinstance(aaguid, str) or not _AAGUID.match(aaguid):
                raise self.fail(
                    path,
                    f"{aaguid!r} is not an AAGUID like 'cb69481e-8ff7-4039-93ec-0a2729a154a8' "
                    "(lower-case)",
                )
        return frozenset(raw)

    def _step_ups(self, raw: object, path: Path_) -> tuple[StepUp, ...]:
        if not isinstance(raw, dict):
            raise self.fail(path, "step_up must be a table of [step_up.ACTION] tables")
        actions = []
        for action, spec in raw.items():
            where = (*path, action)
            if not NAME.match(action):
                raise self.fail(
                    where, f"action name {action!r}: use lower-case letters, digits and _"
                )
            table = self._table(spec, where, STEP_UP_KEYS)
            max_age = self._duration(table, (*where, "max_age"))
            if "aal" not in table or max_age is None:
                raise self.fail(where, f"step_up.{action} needs both aal and max_age")
            actions.append(
                StepUp(
                    action=action,
                    aal=self._level(table, (*where, "aal"), default=0),
                    max_age=max_age,
                )
            )
        return tuple(actions)

    def rule(self, index: int, raw: object, tiers: set[str]) -> Rule:
        path: Path_ = ("rules", index)
        table = self._table(raw, path, RULE_KEYS)
        when, tier = table.get("when"), table.get("tier")
        if not isinstance(when, str) or not isinstance(tier, str):
            raise self.fail(path, 'a rule needs when = "attribute >= value" and tier = "name"')
        if tier not in tiers:
            raise self.fail((*path, "tier"), f"rule names tier {tier!r}, which is not declared")
        found = _WHEN.match(when)
        if found is None:
            raise self.fail(
                (*path, "when"),
                f"cannot read {when!r}: write attribute, operator ({' '.join(OPERATORS)}) "
                "and value, like assets_jpy >= 10_000_000",
            )
        value = _literal(found.group(3))
        if value is None:
            raise self.fail(
                (*path, "when"),
                f'value {found.group(3)!r}: use a number, true, false or a "quoted string"',
            )
        if found.group(2) not in ("==", "!=") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise self.fail((*path, "when"), f"{found.group(2)} compares numbers only")
        return Rule(attribute=found.group(1), operator=found.group(2), value=value, tier=tier)


def _literal(raw: str) -> int | float | str | bool | None:
    if raw in ("true", "false"):
        return raw == "true"
    if _INTEGER.match(raw):
        return int(raw.replace("_", ""))
    if _FLOAT.match(raw):
        return float(raw.replace("_", ""))
    if len(raw) >= 2 and raw[0] == raw[-1] == '"' and '"' not in raw[1:-1]:
        return raw[1:-1]
    return None


def _dotted(path: Path_) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "the file"
