"""The Japanese catalogue is complete and well-formed, and the i18n helpers use it.

A string added to a template or to Python code without a translation fails here: run
``scripts/messages``, translate the new entries in ``messages.po`` and run the tests again.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from sekisho.errors import ErrorCode
from sekisho.i18n import LOCALE_DIR, gettext, jinja_environment, minutes_left, negotiate
from sekisho.web.pages import EVENT_LABELS

ROOT = Path(__file__).resolve().parents[2]
PO_PATH = LOCALE_DIR / "ja" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdifr]")


def _catalog() -> Catalog:
    with PO_PATH.open("rb") as handle:
        return read_po(handle, locale="ja")


def _translatable(catalog: Catalog) -> list[Message]:
    return [message for message in catalog if message.id]


def _texts(value: str | tuple[str, ...] | list[str] | None) -> list[str]:
    if value is None:
        return [""]
    return [value] if isinstance(value, str) else list(value)


def _extracted() -> dict[tuple[str, str | None], str]:
    """Every message in the source tree, extracted exactly as ``scripts/messages`` does."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle, "babel.cfg")  # type: ignore[no-untyped-call]
    found: dict[tuple[str, str | None], str] = {}
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
    ):
        msgid = _texts(message)[0]
        found.setdefault((msgid, context), f"{filename}:{lineno}")
    return found


def test_every_message_has_a_reviewed_translation() -> None:
    catalog = _catalog()
    assert len(_translatable(catalog)) > 0
    problems = []
    for message in _translatable(catalog):
        strings = _texts(message.string)
        if message.fuzzy:
            problems.append(f"fuzzy: {message.id!r}")
        if not all(text.strip() for text in strings):
            problems.append(f"untranslated: {message.id!r}")
    assert not problems, "\n".join(problems)


def test_translations_keep_the_placeholders_and_add_no_markup() -> None:
    problems = []
    for message in _translatable(_catalog()):
        source = " ".join(_texts(message.id))
        # Each plural form of a message has the placeholders of its singular.
        expected = Counter(PLACEHOLDER.findall(_texts(message.id)[0]))
        for text in _texts(message.string):
            if Counter(PLACEHOLDER.findall(text)) != expected:
                problems.append(f"placeholders differ: {message.id!r} -> {text!r}")
            # Jinja's newstyle gettext always applies %-formatting: a stray % breaks it.
            if "%" in PLACEHOLDER.sub("", text).replace("%%", ""):
                problems.append(f"stray %: {message.id!r} -> {text!r}")
            # Translations reach autoescaped HTML unescaped (as Markup).
            if any(char in text and char not in source for char in "<>&"):
                problems.append(f"markup added: {message.id!r} -> {text!r}")
    assert not problems, "\n".join(problems)


def test_every_message_in_the_source_is_in_the_catalogue() -> None:
    catalog = _catalog()
    missing = [
        f"{where}: {msgid!r}"
        for (msgid, context), where in sorted(_extracted().items(), key=lambda item: item[1])
        if catalog.get(msgid, context) is None
    ]
    assert not missing, "run scripts/messages and translate:\n" + "\n".join(missing)


def test_extraction_finds_text_translated_outside_gettext_calls() -> None:
    """ErrorSpec messages and EVENT_LABELS values reach gettext only at render time."""
    extracted = {msgid for msgid, _context in _extracted()}
    expected = {code.message for code in ErrorCode} | set(EVENT_LABELS.values())
    assert not expected - extracted, "babel.cfg keywords (Babel >= 2.18) or N_() missing"


@pytest.mark.parametrize(
    ("accept_language", "chosen", "expected"),
    [
        ("ja-JP,ja;q=0.9,en;q=0.8", None, "ja"),
        ("en;q=0.5,ja;q=0.9", None, "ja"),
        ("fr-FR", None, "en"),
        (None, None, "en"),
        ("ja-JP,ja;q=0.9,en;q=0.8", "en", "en"),
        ("fr-FR", "ja", "ja"),
        ("ja-JP", "fr", "ja"),
    ],
)
def test_negotiate(accept_language: str | None, chosen: str | None, expected: str) -> None:
    assert negotiate(accept_language, chosen) == expected


def test_gettext_translates_and_fills_placeholders() -> None:
    subject = "Your sign-in code is %(code)s"
    assert gettext("ja", subject, code="123456") == "サインイン用の確認コードは123456です"
    assert gettext("en", subject, code="123456") == "Your sign-in code is 123456"
    assert gettext("ja", ErrorCode.code_incorrect.message) == "確認コードが正しくありません。"


def _render_signin_text(locale: str) -> str:
    template = jinja_environment("mail/templates", locale).get_template("signin.txt")
    return template.render(
        to="hanako@example.jp",
        locale=locale,
        link="https://sekisho.example.jp/signin/email/link?token=abc123",
        code="482916",
        requested_at=datetime(2025, 4, 1, 9, 30, tzinfo=UTC),
        ip="203.0.113.7",
        device="Safari on iOS",
        expires_minutes=15,
    )


def test_signin_email_in_japanese() -> None:
    text = _render_signin_text("ja")
    assert "Sekishoへのサインイン" in text
    assert "確認コード" in text
    assert "有効期限は15分です" in text
    assert "482916" in text
    assert "https://sekisho.example.jp/signin/email/link?token=abc123" in text
    assert "203.0.113.7" in text
    assert "Safari on iOS" in text
    assert "2025年4月1日 18:30（日本時間）" in text  # noqa: RUF001
    assert "Sign in to Sekisho" not in text
    assert "Your code" not in text


def test_signin_email_in_english_is_untouched() -> None:
    text = _render_signin_text("en")
    assert "Sign in to Sekisho" in text
    assert "expire in 15 minutes" in text
    assert "April 1, 2025, 9:30\u202fAM UTC" in text
    assert "確認コード" not in text


@pytest.mark.parametrize(
    ("seconds", "minutes"), [(1, 1), (59, 1), (60, 1), (61, 2), (90, 2), (600, 10)]
)
def test_minutes_left_round_up(seconds: int, minutes: int) -> None:
    assert minutes_left(timedelta(seconds=seconds)) == minutes
