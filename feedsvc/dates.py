"""Turn the many ways authors write a date into one aware datetime."""

from __future__ import annotations

import re
import warnings
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil import parser as dateutil_parser
from dateutil.tz import UTC

# A trailing IANA zone name such as "Europe/Paris" or "America/Argentina/Buenos_Aires".
_ZONE_NAME = re.compile(r"\s+([A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+)\s*$")
_UTC_NAMES = {"UTC": UTC, "GMT": UTC, "Z": UTC}
# Feeds write years with four digits (RFC 822, RFC 3339); earlier ones are typos anyway.
MIN_YEAR = 1000


class DateError(ValueError):
    """A date value that cannot be understood."""


def load_timezone(name: str) -> tzinfo:
    """Return the time zone called `name` (IANA name such as "Europe/Paris", or "UTC")."""
    if name.upper() in _UTC_NAMES:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DateError(f"unknown time zone {name!r}") from exc


def to_datetime(value: object, default_tz: tzinfo) -> datetime:
    """Normalise a YAML date value (str, date or datetime) to an aware datetime.

    A value that carries its own offset keeps it, so feeds show the author's real offset;
    a value without one is read as a wall-clock time in `default_tz`. See fixed_offset.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        moment, named_zone = _parse_text(value.strip())
        if named_zone is not None:
            moment = moment.replace(tzinfo=named_zone)
    else:
        raise DateError(f"expected a date, got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=default_tz)
    return fixed_offset(moment)


def fixed_offset(moment: datetime) -> datetime:
    """Return the same instant with a fixed-offset zone that every feed format can write.

    Python compares two datetimes sharing one zone object by wall clock, which is wrong
    across a clock change; fixed offsets compare as instants. An offset with seconds (local
    mean time before ~1900, Monrovia until 1972) fits neither RFC 822 nor RFC 3339: such a
    date is given in UTC, exactly the same instant. Years before MIN_YEAR are refused.
    """
    offset = moment.utcoffset()
    whole_minutes = not offset % timedelta(minutes=1)
    zone = timezone(offset) if offset and whole_minutes else UTC
    try:
        moment = moment.astimezone(zone)
    except OverflowError as exc:
        raise DateError(f"{moment:%Y-%m-%d} is out of range") from exc
    if moment.year < MIN_YEAR:
        raise DateError(
            f"year {moment.year} is before {MIN_YEAR}: feeds cannot carry it; is it a typo?"
        )
    return moment


def announced_update(updated: datetime, published: datetime, now: datetime) -> datetime:
    """Return the `updated` time feeds may show at `now`: never one still in the future.

    A future `updated` (a typo such as 2999) shows the publication date until it comes.
    """
    return updated if updated <= now else published


def _parse_text(text: str) -> tuple[datetime, tzinfo | None]:
    named_zone = None
    match = _ZONE_NAME.search(text)
    if match:
        named_zone = load_timezone(match.group(1))
        text = text[: match.start()]
    try:  # ISO 8601, the common case, without dateutil's slower general parser
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _parse_any(text)
    if named_zone is not None and moment.tzinfo is not None:
        raise DateError(f"date {text!r} has both an offset and a zone name")
    return moment, named_zone


def _parse_any(text: str) -> datetime:
    try:
        with warnings.catch_warnings():
            # dateutil warns on zone abbreviations it cannot resolve; refuse them instead.
            warnings.simplefilter("error", dateutil_parser.UnknownTimezoneWarning)
            return dateutil_parser.parse(text, tzinfos=_UTC_NAMES)
    except dateutil_parser.UnknownTimezoneWarning as exc:
        raise DateError(
            f"unknown time zone in date {text!r}; use an offset such as +02:00"
        ) from exc
    except (ValueError, OverflowError) as exc:
        raise DateError(f"cannot read {text!r} as a date") from exc
