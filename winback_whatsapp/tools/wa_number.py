"""Meta's WhatsApp IDs (``wa_id``) as E.164 numbers, and the other ways the
same line is written.

A ``wa_id`` is the digits WhatsApp registered the account under, which is
usually, but not always, the number's E.164 form:

- Mexico: accounts registered before the 2019 dialling reform keep the
  mobile "1" after the country code. ``521`` + 10 digits is
  ``+52`` + 10 digits, the only form phonenumbers accepts.
- Brazil: accounts registered before the ninth mobile digit, outside areas
  11-19, 21, 22, 24, 27 and 28, keep 8 digits. ``55`` + area + 8 digits
  (a mobile, first digit 6-9) is ``+55`` + area + ``9`` + 8 digits.
- Argentina: the ``wa_id`` is the international mobile form, ``549`` +
  area + number, which is E.164 already; shops often keep the same line
  without the 9 (``+54`` + area + number), so both forms are the customer's.

Pure functions: no Odoo, only phonenumbers.
"""

import re

import phonenumbers


def is_valid_e164(number):
    """Whether phonenumbers takes ``number`` ("+" and digits) as valid."""
    try:
        parsed = phonenumbers.parse(number or "", None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(parsed)


def number_region(number):
    """The region code (``"IT"``, ``"US"``...) phonenumbers gives an E.164
    number, from its calling code (the first region of a shared code when
    the number itself does not tell); None when it cannot read it. Meta
    charges a message by the recipient's country calling code."""
    try:
        parsed = phonenumbers.parse(number or "", None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(
        parsed
    ) or phonenumbers.region_code_for_country_code(parsed.country_code)
    return None if region in (None, "ZZ", "001") else region


def wa_id_to_e164(wa_id):
    """The E.164 number of a WhatsApp ID: ``"+"`` and digits.

    Known WhatsApp forms are rewritten to the number's E.164 form; anything
    else keeps its digits as they are (``"+" + digits``), valid or not, so
    that an opt-out is never lost for want of a parseable number. Returns
    ``""`` when there is no digit at all.

    The bare ``"+"`` is deliberate: phone_validation's ``_phone_format``
    (used wherever a number is stored or looked up) returns nothing for a
    number phonenumbers rejects, and a STOP from such a number must still be
    blacklisted under a stable form (see ``phone.blacklist._winback_add``)."""
    digits = re.sub(r"\D", "", str(wa_id or ""))
    if not digits:
        return ""
    if len(digits) == 13 and digits.startswith("521"):
        return "+52" + digits[3:]
    if (
        len(digits) == 12
        and digits.startswith("55")
        and digits[4] in "6789"
        and not is_valid_e164("+" + digits)
    ):
        nine = f"+55{digits[2:4]}9{digits[4:]}"
        if is_valid_e164(nine):
            return nine
    return "+" + digits


def number_variants(e164):
    """Other writings of the same line as the E.164 number ``e164``, best
    first: what a contact may hold, or Meta may send, for that customer."""
    digits = re.sub(r"\D", "", e164 or "")
    variants = []
    if digits.startswith("52") and len(digits) == 12:
        variants.append("+521" + digits[2:])
    elif digits.startswith("521") and len(digits) == 13:
        variants.append("+52" + digits[3:])
    elif digits.startswith("549") and len(digits) == 13:
        variants.append("+54" + digits[3:])
    elif digits.startswith("54") and len(digits) == 12:
        variants.append("+549" + digits[2:])
    elif digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        variants.append(f"+55{digits[2:4]}{digits[5:]}")
    elif digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        variants.append(f"+55{digits[2:4]}9{digits[4:]}")
    return variants


def _us_pattern():
    """A regular expression matching the E.164 numbers that phonenumbers
    places in the United States (``region_code_for_number`` is ``"US"``):
    ``+1`` followed by a national number of one of the US number types.
    The United States come first among the +1 regions, so a +1 number is
    American exactly when one of the US patterns takes it; Canada and the
    Caribbean (their own area codes) are not. Written for Python's ``re``
    and PostgreSQL's ``~`` alike (only groups, classes and counts)."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region("US")
    descs = (
        metadata.premium_rate,
        metadata.toll_free,
        metadata.shared_cost,
        metadata.voip,
        metadata.personal_number,
        metadata.pager,
        metadata.uan,
        metadata.voicemail,
        metadata.fixed_line,
        metadata.mobile,
    )
    patterns = [
        d.national_number_pattern for d in descs if d and d.national_number_pattern
    ]
    return r"^\+1(?:" + "|".join(f"(?:{p})" for p in patterns) + ")$"


# Meta does not deliver marketing template messages to WhatsApp users with a
# United States number (+1 and a US area code), since April 2025: see
# is_us_number.
US_NUMBER_PATTERN = _us_pattern()
_US_NUMBER = re.compile(US_NUMBER_PATTERN)


def is_us_number(e164):
    """Whether the E.164 number ``e164`` is a United States number, to which
    Meta delivers no marketing template message (utility and free-text
    messages still go). The same test as ``US_NUMBER_PATTERN`` in SQL."""
    return bool(_US_NUMBER.fullmatch(e164 or ""))
