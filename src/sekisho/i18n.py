"""English and Japanese text (Babel + gettext).

The catalogues are ``locale/<lang>/LC_MESSAGES/messages.po`` files, compiled in memory
at start-up, so there is no build step and the ``.po`` file is the one source.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import cache
from io import BytesIO
from pathlib import Path

from babel import Locale, dates
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

LOCALES = ("en", "ja")
DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


@cache
def translations(locale: str) -> NullTranslations:
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale == DEFAULT_LOCALE or not po_path.exists():
        return NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The chosen language if supported, else the best match of Accept-Language."""
    if chosen in LOCALES:
        return str(chosen)
    preferred: list[tuple[float, str]] = []
    for part in (accept_language or "").split(",")[:20]:
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag:
            preferred.append((quality, tag.strip()))
    for _quality, tag in sorted(preferred, key=lambda item: -item[0]):
        language = tag.split("-")[0].lower()
        if language in LOCALES:
            return language
    return DEFAULT_LOCALE


def format_datetime(value: datetime, locale: str) -> str:
    """A medium date and time in UTC, in the reader's language."""
    text = dates.format_datetime(
        value, format="medium", tzinfo=dates.get_timezone("UTC"), locale=Locale.parse(locale)
    )
    return f"{text} UTC"


@cache
def jinja_environment(folder: str, locale: str) -> Environment:
    """One environment per template folder and language (thread-safe: never mutated)."""
    environment = Environment(
        loader=PackageLoader("sekisho", folder),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        undefined=StrictUndefined,
    )
    environment.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    environment.globals["locale"] = locale
    environment.filters["datetime"] = lambda value: format_datetime(value, locale)
    return environment


def gettext(locale: str, message: str, **params: object) -> str:
    text = translations(locale).gettext(message)
    return text % params if params else text


def minutes_left(remaining: timedelta) -> int:
    """Whole minutes to show for ``remaining``, rounded up: never "0 minutes" for time
    that is still left (show it with ``ngettext``, never as "1 minutes")."""
    return max(1, math.ceil(remaining.total_seconds() / 60))


def N_(message: str) -> str:
    """Marks a message for extraction without translating it (``gettext`` does, later)."""
    return message
