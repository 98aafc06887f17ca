"""House style of the Japanese text, checked over the whole catalogue and the rendered
mail: nothing follows a full-width colon but its value, no ASCII punctuation right after
Japanese, emails say 「無視してください」, never 「破棄してください」, and one word names one thing
(端末, never デバイス)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from sekisho.i18n import LOCALE_DIR, jinja_environment

JAPANESE = r"[\u3040-\u30ff\u3400-\u9fff]"
SPACE_AFTER_COLON = re.compile(r"： ")  # noqa: RUF001
ASCII_AFTER_JAPANESE = re.compile(JAPANESE + r"[:?!,]")
VALUES = {
    "to": "hanako@example.jp",
    "locale": "ja",
    "link": "https://sekisho.example.jp/signin/email/link?token=abc123",
    "code": "482916",
    "requested_at": datetime(2025, 4, 1, 9, 30, tzinfo=UTC),
    "ip": "203.0.113.7",
    "device": "Linux 上の Chrome",
    "expires_minutes": 15,
    "account_url": "https://sekisho.example.jp/account",
    "body": "パスキー「My laptop」がアカウントに追加されました。",
    "public_origin": "https://sekisho.example.jp",
    "signin_url": "https://sekisho.example.jp/signin",
    "title": "アカウントにパスキーが追加されました",
    "by_operator": False,
}


def _translations() -> list[tuple[str, str]]:
    with (LOCALE_DIR / "ja" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="ja")
    return [(str(message.id), str(message.string)) for message in catalog if message.id]


def test_no_space_after_a_full_width_colon_or_ascii_punctuation_after_japanese() -> None:
    problems = [
        f"{msgid!r}: {msgstr!r}"
        for msgid, msgstr in _translations()
        if SPACE_AFTER_COLON.search(msgstr) or ASCII_AFTER_JAPANESE.search(msgstr)
    ]
    assert not problems, "\n".join(problems)


# The catalogue's word for each thing, and the variants that must not creep in beside it.
ONE_WORD = {"端末": "デバイス", "ブラウザ": "ブラウザー", "サインイン": "ログイン"}


@pytest.mark.parametrize(("word", "variant"), ONE_WORD.items())
def test_one_word_for_each_thing(word: str, variant: str) -> None:
    texts = [msgstr for _msgid, msgstr in _translations()]
    assert any(word in text for text in texts)
    assert not [text for text in texts if variant in text]


def test_emails_are_ignored_not_discarded() -> None:
    texts = [msgstr for _msgid, msgstr in _translations()]
    assert not [text for text in texts if "破棄" in text]
    assert any("このメールは無視してください" in text for text in texts)


@pytest.mark.parametrize(
    ("template", "line"),
    [
        ("signin.txt", "端末：Linux 上の Chrome"),  # noqa: RUF001
        ("notice.txt", "端末：Linux 上の Chrome"),  # noqa: RUF001
        ("no_account.txt", "端末：Linux 上の Chrome"),  # noqa: RUF001
        ("passkey_only.txt", "IPアドレス：203.0.113.7"),  # noqa: RUF001
    ],
)
def test_rendered_japanese_mail_puts_values_right_after_the_colon(template: str, line: str) -> None:
    text = jinja_environment("mail/templates", "ja").get_template(template).render(**VALUES)
    assert "：" in text  # noqa: RUF001
    assert not SPACE_AFTER_COLON.search(text), text
    assert line in text
