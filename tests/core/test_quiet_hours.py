"""Quiet hours: 20h–8h Paris time, Sundays and French public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

import pytest

from gateway.core.quiet_hours import PARIS, is_quiet, public_holidays

# Code du travail art. L3133-1, the national public holidays of 2026, written out here
# independently of the `holidays` package.
NATIONAL_2026 = {
    date(2026, 1, 1),  # Jour de l'an
    date(2026, 4, 6),  # Lundi de Pâques
    date(2026, 5, 1),  # Fête du travail
    date(2026, 5, 8),  # Victoire 1945
    date(2026, 5, 14),  # Ascension
    date(2026, 5, 25),  # Lundi de Pentecôte
    date(2026, 7, 14),  # Fête nationale
    date(2026, 8, 15),  # Assomption
    date(2026, 11, 1),  # Toussaint
    date(2026, 11, 11),  # Armistice 1918
    date(2026, 12, 25),  # Noël
}
# Art. L3134-13: Alsace-Moselle adds Good Friday and Saint Stephen's Day.
ALSACE_MOSELLE_2026 = NATIONAL_2026 | {date(2026, 4, 3), date(2026, 12, 26)}


def at(instant: str) -> datetime:
    return datetime.fromisoformat(instant.replace("Z", "+00:00"))


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        # Tuesday 2026-12-01, winter time (+01:00).
        ("2026-12-01T10:00:00+01:00", False),
        ("2026-12-01T00:00:00+01:00", True),
        ("2026-12-01T07:59:59+01:00", True),
        ("2026-12-01T07:59:59.999999+01:00", True),
        ("2026-12-01T08:00:00+01:00", False),
        ("2026-12-01T19:59:59+01:00", False),
        ("2026-12-01T20:00:00+01:00", True),
        ("2026-12-01T23:59:59+01:00", True),
        # Tuesday 2026-06-02, summer time (+02:00).
        ("2026-06-02T10:00:00+02:00", False),
        ("2026-06-02T07:59:59+02:00", True),
        ("2026-06-02T08:00:00+02:00", False),
        ("2026-06-02T19:59:59+02:00", False),
        ("2026-06-02T20:00:00+02:00", True),
    ],
)
def test_quiet_before_8_and_from_20_paris_time(instant: str, quiet: bool) -> None:
    assert is_quiet(at(instant)) is quiet


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        ("2026-12-01T09:00:00Z", False),
        ("2026-12-01T06:59:59Z", True),
        ("2026-12-01T07:00:00Z", False),
        ("2026-12-01T18:59:59Z", False),
        ("2026-12-01T19:00:00Z", True),
        ("2026-06-02T08:00:00Z", False),
        ("2026-06-02T05:59:59Z", True),
        ("2026-06-02T06:00:00Z", False),
        ("2026-06-02T17:59:59Z", False),
        ("2026-06-02T18:00:00Z", True),
    ],
)
def test_utc_instants_are_read_in_paris_time(instant: str, quiet: bool) -> None:
    assert is_quiet(at(instant)) is quiet


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        # Saturday 2026-03-28, the last day of winter time: 08:00 Paris is 07:00Z.
        ("2026-03-28T06:59:59Z", True),
        ("2026-03-28T07:00:00Z", False),
        ("2026-03-28T18:59:59Z", False),
        ("2026-03-28T19:00:00Z", True),
        # Sunday 2026-03-29, clocks go forward at 01:00Z: quiet all day, being a Sunday.
        ("2026-03-29T00:59:59Z", True),
        ("2026-03-29T01:00:00Z", True),
        ("2026-03-29T10:00:00+02:00", True),
        ("2026-03-29T14:00:00Z", True),
        # Monday 2026-03-30, the first weekday of summer time: 08:00 Paris is 06:00Z.
        ("2026-03-30T05:59:59Z", True),
        ("2026-03-30T06:00:00Z", False),
        ("2026-03-30T17:59:59Z", False),
        ("2026-03-30T18:00:00Z", True),
        # Saturday 2026-10-24, the last day of summer time.
        ("2026-10-24T05:59:59Z", True),
        ("2026-10-24T06:00:00Z", False),
        ("2026-10-24T17:59:59Z", False),
        ("2026-10-24T18:00:00Z", True),
        # Sunday 2026-10-25, clocks go back at 01:00Z: quiet all day, being a Sunday.
        ("2026-10-25T00:59:59Z", True),
        ("2026-10-25T01:00:00Z", True),
        ("2026-10-25T10:00:00+01:00", True),
        # Monday 2026-10-26, the first weekday of winter time: 08:00 Paris is 07:00Z.
        ("2026-10-26T06:00:00Z", True),
        ("2026-10-26T06:59:59Z", True),
        ("2026-10-26T07:00:00Z", False),
        ("2026-10-26T18:59:59Z", False),
        ("2026-10-26T19:00:00Z", True),
    ],
)
def test_daylight_saving_changes(instant: str, quiet: bool) -> None:
    assert is_quiet(at(instant)) is quiet


@pytest.mark.parametrize(
    ("instant", "quiet"),
    [
        ("2026-12-01T10:00:00-05:00", False),  # 16:00 Paris
        ("2026-12-01T14:00:00-05:00", True),  # 20:00 Paris
        # Tokyo's date is the 15th, Paris's the 14th of July: the Paris date decides.
        ("2026-07-15T00:30:00+09:00", True),
        ("2026-07-14T18:00:00+09:00", True),
        ("2026-07-15T17:00:00+09:00", False),
        # Monday in Tokyo, still Sunday in Paris.
        ("2026-11-30T00:30:00+09:00", True),
    ],
)
def test_other_offsets_are_read_in_paris_time(instant: str, quiet: bool) -> None:
    assert is_quiet(at(instant)) is quiet


def test_paris_zone_object_is_accepted() -> None:
    assert is_quiet(datetime(2026, 12, 1, 10, 0, tzinfo=PARIS)) is False
    assert is_quiet(datetime(2026, 12, 1, 20, 0, tzinfo=PARIS)) is True


@pytest.mark.parametrize(
    "day",
    [
        "2026-11-29",  # a Sunday
        "2026-03-29",
        "2026-10-25",
        "2026-04-05",  # Easter Sunday
    ],
)
def test_sunday_is_quiet_all_day(day: str) -> None:
    assert is_quiet(datetime.fromisoformat(f"{day}T12:00:00").replace(tzinfo=PARIS))


@pytest.mark.parametrize(
    "day",
    [
        "2026-01-01",
        "2026-04-06",  # Easter Monday
        "2026-05-01",
        "2026-05-08",
        "2026-05-14",  # Ascension
        "2026-05-25",  # Whit Monday
        "2026-07-14",
        "2026-08-15",  # a Saturday
        "2026-11-01",  # a Sunday too
        "2026-11-11",
        "2026-12-25",
        "2027-03-29",  # Easter Monday of another year
        "2027-11-01",  # a Monday
    ],
)
def test_national_public_holiday_is_quiet_all_day(day: str) -> None:
    assert is_quiet(datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=PARIS))


@pytest.mark.parametrize(
    "day",
    [
        "2026-04-03",  # Good Friday: only in Alsace-Moselle
        "2026-12-26",  # Saint Stephen's Day, a Saturday: only in Alsace-Moselle
        "2026-12-24",
        "2026-12-31",
        "2026-11-28",  # a Saturday
        "2027-03-26",
    ],
)
def test_working_day_is_not_quiet_nationally(day: str) -> None:
    assert not is_quiet(datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=PARIS))


@pytest.mark.parametrize(
    ("day", "quiet"),
    [
        ("2026-04-03", True),  # Good Friday
        ("2026-12-26", True),
        ("2027-03-26", True),  # Good Friday of another year
        ("2026-07-14", True),  # the national days still count
        ("2026-12-25", True),
        ("2026-12-24", False),
        ("2026-12-01", False),
    ],
)
def test_alsace_moselle_adds_good_friday_and_26_december(day: str, quiet: bool) -> None:
    instant = datetime.fromisoformat(f"{day}T10:00:00").replace(tzinfo=PARIS)
    assert is_quiet(instant, alsace_moselle=True) is quiet


def test_holiday_calendar_of_2026_is_the_legal_one() -> None:
    assert public_holidays(2026) == NATIONAL_2026
    assert public_holidays(2026, alsace_moselle=True) == ALSACE_MOSELLE_2026


@pytest.mark.parametrize("alsace_moselle", [False, True])
def test_every_midday_of_2026(alsace_moselle: bool) -> None:
    holidays = ALSACE_MOSELLE_2026 if alsace_moselle else NATIONAL_2026
    day = date(2026, 1, 1)
    wrong = []
    while day.year == 2026:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=PARIS)
        expected = day.weekday() == 6 or day in holidays
        if is_quiet(noon, alsace_moselle=alsace_moselle) is not expected:
            wrong.append(day.isoformat())
        day += timedelta(days=1)
    assert wrong == []


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        is_quiet(datetime(2026, 12, 1, 10, 0))


class _NoOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_datetime_whose_zone_gives_no_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        is_quiet(datetime(2026, 12, 1, 10, 0, tzinfo=_NoOffset()))


def test_utc_timezone_object_is_accepted() -> None:
    assert is_quiet(datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) is False
