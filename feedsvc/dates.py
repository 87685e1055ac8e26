"""Turn the many ways authors write a date into one aware datetime."""

from __future__ import annotations

import re
import warnings
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.tz import UTC

# A trailing IANA zone name such as "Europe/Paris" or "America/Argentina/Buenos_Aires".
_ZONE_NAME = re.compile(r"\s+([A-Za-z_]+(?:/[A-Za-z0-9_+\-]+)+)\s*$")
_UTC_NAMES = {"UTC": UTC, "GMT": UTC, "Z": UTC}
# Feeds write years with four digits (RFC 822, RFC 3339); earlier ones are typos anyway.
MIN_YEAR = 1000
# The two notations after ISO 8601 that authors write most, read without dateutil (one in
# twenty dates, each costing as much there as a whole file): "Mon, 05 Oct 2026 10:00:00
# +0200" (RFC 822, as feeds write it) and "October 5, 2026 10:30" (wall-clock time).
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAYS = "mon|tue|wed|thu|fri|sat|sun|monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_RFC_822 = re.compile(
    rf"(?:(?:{_WEEKDAYS}), )?(\d{{1,2}}) ([a-z]{{3,9}}) (\d{{4}})"
    r" (\d{2}):(\d{2})(?::(\d{2}))? ([+-])(\d{2})(\d{2})",
    re.IGNORECASE | re.ASCII,
)
_MONTH_DAY_YEAR = re.compile(
    r"([a-z]{3,9}) (\d{1,2}), (\d{4}) (\d{1,2}):(\d{2})", re.IGNORECASE | re.ASCII
)


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
    try:
        offset = moment.utcoffset()
    except ValueError:  # dateutil reads "+2400" as an offset no datetime can have
        raise DateError(f"the offset in {value!r} is not within 24 hours") from None
    if moment.tzinfo is None or offset is None:
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
    match = _ZONE_NAME.search(text) if "/" in text else None  # a zone name has a "/"
    if match:
        named_zone = load_timezone(match.group(1))
        text = text[: match.start()]
    try:  # ISO 8601, the common case, without dateutil's slower general parser
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = _parse_common(text) or _parse_any(text)
    if named_zone is not None and moment.tzinfo is not None:
        raise DateError(f"date {text!r} has both an offset and a zone name")
    return moment, named_zone


def _parse_common(text: str) -> datetime | None:
    """Read an RFC 822 date or "October 5, 2026 10:30" exactly as dateutil would; else None.

    Anything unusual (a zone name, an impossible day, an offset of 24 hours) is left to
    dateutil, whose answer, or error, it is.
    """
    if match := _RFC_822.fullmatch(text):
        day, month, year, hour, minute, second, sign, offset_hours, offset_minutes = match.groups()
        offset = timedelta(hours=int(offset_hours), minutes=int(offset_minutes))
        if int(offset_minutes) >= 60 or offset >= timedelta(hours=24):
            return None
        zone = timezone(-offset if sign == "-" else offset)
    elif match := _MONTH_DAY_YEAR.fullmatch(text):
        month, day, year, hour, minute = match.groups()
        second, zone = None, None
    else:
        return None
    number = _MONTHS.get(month.lower())
    if number is None:
        return None
    try:
        return datetime(
            int(year), number, int(day), int(hour), int(minute), int(second or 0), tzinfo=zone
        )
    except ValueError:
        return None


def _parse_any(text: str) -> datetime:
    """Read any other notation with dateutil, imported on first use: a worker that
    follows the publisher reads no date, and most sites write none it is needed for."""
    from dateutil import parser as dateutil_parser

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
