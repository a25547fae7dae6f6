"""Send windows in the customer's own time zone.

Plain Python, no ORM: the enrollment planner and the sender both use it.
Datetimes in and out are naive UTC, as Odoo stores them.
"""

from datetime import datetime, timedelta

import phonenumbers
import pytz
from phonenumbers import timezone as phone_timezone


def customer_timezone(partner_tz, e164, company_tz):
    """The time zone to send in: the customer's own; else the one of their
    phone number, when all the zones phonenumbers gives for it keep the same
    time (Italy: Rome and the Vatican); else the company's; else UTC.

    A number of a country with several clocks (a Russian mobile lists 16
    zones, from Kaliningrad to Kamchatka) says nothing about the customer's:
    the company's time zone is the better guess."""
    if partner_tz in pytz.all_timezones_set:
        return partner_tz
    if e164:
        try:
            zones = phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
        except phonenumbers.NumberParseException:
            zones = ()
        zones = [zone for zone in zones if zone in pytz.all_timezones_set]
        if zones and _same_clock(zones):
            return zones[0]
    if company_tz in pytz.all_timezones_set:
        return company_tz
    return "UTC"


def _same_clock(zones):
    """Whether these zones show the same time all year round (this year's
    winter and summer offsets)."""
    year = datetime.now().year
    instants = [datetime(year, 1, 15, 12), datetime(year, 7, 15, 12)]
    clocks = {
        tuple(pytz.timezone(zone).utcoffset(instant) for instant in instants)
        for zone in zones
    }
    return len(clocks) == 1


def next_window_start(when, tz_name, start_hour, end_hour, weekdays):
    """First moment at or after ``when`` that lies inside the send window
    (naive UTC); see ``send_window``."""
    return send_window(when, tz_name, start_hour, end_hour, weekdays)[0]


def send_window(when, tz_name, start_hour, end_hour, weekdays):
    """The send window a message due at ``when`` goes in: its first moment
    at or after ``when``, and the moment that window closes.

    :param datetime when: naive UTC
    :param str tz_name: the customer's time zone
    :param float start_hour: window opening, local time (9.5 is 09:30)
    :param float end_hour: window closing, local time, excluded
    :param weekdays: days allowed, 0 is Monday
    :return: (opens, closes), naive UTC datetimes
    """
    weekdays = set(weekdays)
    if not weekdays or not 0 <= start_hour < end_hour <= 24:
        raise ValueError("The send window is empty.")
    tz = pytz.timezone(tz_name)
    local_now = pytz.utc.localize(when).astimezone(tz)
    for offset in range(8):
        day = (local_now + timedelta(days=offset)).date()
        if day.weekday() not in weekdays:
            continue
        midnight = datetime.combine(day, datetime.min.time())
        opens = tz.localize(midnight + timedelta(hours=start_hour))
        closes = tz.localize(midnight + timedelta(hours=end_hour))
        candidate = max(local_now, opens)
        if candidate < closes:
            return (
                candidate.astimezone(pytz.utc).replace(tzinfo=None),
                closes.astimezone(pytz.utc).replace(tzinfo=None),
            )
    raise ValueError("The send window is empty.")  # unreachable with a weekday
