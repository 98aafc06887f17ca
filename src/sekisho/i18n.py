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


def N_(message: str) -> str:
    """Marks a message for extraction without translating it (``gettext`` does, later)."""
    return message


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


# The zone a message shows its times in, by the reader's language: a mail client does
# not tell the server where its reader is, so the language is the best guess there is,
# and the zone is always named next to the time.
MAIL_TIME_ZONES = {"en": "UTC", "ja": "Asia/Tokyo"}
# Translators: a date and time followed by the name of its time zone, e.g.
# "November 27, 2026, 8:43 AM UTC"; Japanese puts the zone in full-width brackets.
TIME_IN_ZONE = N_("%(time)s %(zone)s")


def format_mail_datetime(value: datetime, locale: str) -> str:
    """A long date and short time in the zone of :data:`MAIL_TIME_ZONES` for the
    reader's language, with the zone named ("2026年11月27日 17:43" and "日本時間")."""
    zone_key = MAIL_TIME_ZONES.get(locale, "UTC")
    zone = dates.get_timezone(zone_key)
    language = Locale.parse(locale)
    local = value.astimezone(zone)
    day = dates.format_date(local, format="long", locale=language)
    clock = dates.format_time(local, format="short", tzinfo=zone, locale=language)
    pattern = str(language.datetime_formats["long"])
    zone_name = "UTC" if zone_key == "UTC" else dates.get_timezone_location(zone, locale=language)
    return gettext(locale, TIME_IN_ZONE, time=pattern.format(clock, day), zone=zone_name)


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
    environment.filters["mail_datetime"] = lambda value: format_mail_datetime(value, locale)
    return environment


def gettext(locale: str, message: str, **params: object) -> str:
    text = translations(locale).gettext(message)
    return text % params if params else text


def minutes_left(remaining: timedelta) -> int:
    """Whole minutes to show for ``remaining``, rounded up: never "0 minutes" for time
    that is still left (show it with ``ngettext``, never as "1 minutes")."""
    return max(1, math.ceil(remaining.total_seconds() / 60))
