"""Meta's WhatsApp webhook JSON as plain, typed events.

Pure functions, no ORM: the webhook event model walks the ``Change`` list
this returns and hands each event to ``winback.inbound`` (messages,
preferences) or ``winback.status`` (statuses). A payload that does not
have the shape of Meta's webhook raises ``PayloadError``.

Shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

from dataclasses import dataclass
from datetime import datetime, timezone

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
KNOWN_TYPES = ("text", "button", "interactive", "reaction", "location", *MEDIA_TYPES)

# How the readable text of an inbound message is to be shown. ``TEXT``: as
# it is. The others are worded by the caller, in the user's language:
# ``REACTION`` (the text is the emoji), ``UNSUPPORTED`` (the text is the
# message type).
TEXT = "text"
REACTION = "reaction"
UNSUPPORTED = "unsupported"


class PayloadError(ValueError):
    """The payload does not have the shape of Meta's webhook."""


@dataclass(frozen=True)
class MetaError:
    """An error as Meta reports it (in a status, a message or a change)."""

    code: str
    title: str
    details: str = ""

    @property
    def text(self):
        """The title and the details, in one line."""
        if self.title and self.details:
            return f"{self.title}: {self.details}"
        return self.title or self.details


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer sent to the business number."""

    wamid: str | None
    wa_id: str | None
    profile_name: str | None
    type: str | None
    text: str
    text_kind: str  # TEXT, REACTION or UNSUPPORTED
    payload: str | None  # a quick-reply button's or an interactive reply's id
    context_wamid: str | None  # the message it answers, or reacts to
    timestamp: datetime | None  # naive UTC


@dataclass(frozen=True)
class StatusEvent:
    """What became of a message the business sent."""

    wamid: str | None
    status: str | None
    timestamp: datetime | None  # naive UTC
    recipient_id: str | None
    biz_opaque_callback_data: str | None
    errors: tuple[MetaError, ...] = ()

    @property
    def error(self):
        """The first error (Meta sends one), or None."""
        return self.errors[0] if self.errors else None


@dataclass(frozen=True)
class PreferenceEvent:
    """A ``user_preferences`` change: the customer stopped or resumed."""

    wa_id: str | None
    category: str | None
    value: str | None
    timestamp: datetime | None  # naive UTC


@dataclass(frozen=True)
class Change:
    """One change of one entry, with the phone number ID it names (as a
    string; None when it names none) and its events. ``errors`` are Meta's
    value-level errors: signals about the account or the webhook itself,
    attached to no message."""

    field: str | None
    phone_number_id: str | None
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[StatusEvent, ...] = ()
    preferences: tuple[PreferenceEvent, ...] = ()
    errors: tuple[MetaError, ...] = ()


# ----------------------------------------------------------------------
# Scalars
# ----------------------------------------------------------------------


def parse_timestamp(value):
    """WhatsApp's Unix timestamp (seconds, as text or number) as a naive UTC
    datetime; None when missing or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(int(value), tz=timezone.utc).replace(tzinfo=None)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _str(value):
    """A scalar as text; None for nothing."""
    if value is None or value is False or value == "":
        return None
    return str(value)


def _text(value):
    return _str(value) or ""


def _object(value, what):
    if not value:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{what} is not a JSON object")
    return value


def _objects(value, what):
    if not value:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"{what} is not a JSON list")
    return [_object(item, what) for item in value]


# ----------------------------------------------------------------------
# Events
# ----------------------------------------------------------------------


def parse_error(error):
    error = _object(error, "error")
    details = _object(error.get("error_data"), "error_data").get("details")
    return MetaError(
        code=_text(error.get("code")),
        title=_text(error.get("title") or error.get("message")),
        details=_text(details),
    )


def readable_text(msg):
    """``(text, text_kind, payload)`` of an inbound message: what it says,
    how to show it (TEXT, REACTION, UNSUPPORTED) and, for a button tap or
    an interactive reply, the id of what was tapped."""
    mtype = msg.get("type")
    if not isinstance(mtype, str) or mtype not in KNOWN_TYPES:
        return _text(mtype) or "unknown", UNSUPPORTED, None
    content = _object(msg.get(mtype), mtype)
    if mtype == "text":
        return _text(content.get("body")).strip(), TEXT, None
    if mtype == "button":
        return _text(content.get("text")).strip(), TEXT, _str(content.get("payload"))
    if mtype == "interactive":
        reply = _object(
            content.get("button_reply") or content.get("list_reply"), "reply"
        )
        return _text(reply.get("title")).strip(), TEXT, _str(reply.get("id"))
    if mtype == "reaction":
        return _text(content.get("emoji")), REACTION, None
    if mtype in MEDIA_TYPES:
        label = _text(content.get("filename")) or mtype
        caption = _str(content.get("caption"))
        text = f"[{label}] {caption}" if caption else f"[{label}]"
        return text.strip(), TEXT, None
    # location
    text = "[location] {} {} {}".format(
        _text(content.get("name")),
        _text(content.get("latitude")),
        _text(content.get("longitude")),
    )
    return text.strip(), TEXT, None


def parse_message(msg, names=None):
    """One entry of ``value.messages``; ``names``: profile names by wa_id
    (from ``value.contacts``)."""
    msg = _object(msg, "message")
    text, kind, payload = readable_text(msg)
    wa_id = _str(msg.get("from"))
    context_wamid = _str(_object(msg.get("context"), "context").get("id"))
    if msg.get("type") == "reaction":
        reaction = _object(msg.get("reaction"), "reaction")
        context_wamid = _str(reaction.get("message_id"))
    return InboundMessage(
        wamid=_str(msg.get("id")),
        wa_id=wa_id,
        profile_name=_str((names or {}).get(wa_id)),
        type=_str(msg.get("type")),
        text=text,
        text_kind=kind,
        payload=payload,
        context_wamid=context_wamid,
        timestamp=parse_timestamp(msg.get("timestamp")),
    )


def parse_status(status):
    """One entry of ``value.statuses``."""
    status = _object(status, "status")
    return StatusEvent(
        wamid=_str(status.get("id")),
        status=_str(status.get("status")),
        timestamp=parse_timestamp(status.get("timestamp")),
        recipient_id=_str(status.get("recipient_id")),
        biz_opaque_callback_data=_str(status.get("biz_opaque_callback_data")),
        errors=tuple(
            parse_error(e) for e in _objects(status.get("errors"), "status errors")
        ),
    )


def parse_preference(pref):
    """One entry of ``value.user_preferences``."""
    pref = _object(pref, "user preference")
    return PreferenceEvent(
        wa_id=_str(pref.get("wa_id")),
        category=_str(pref.get("category")),
        value=_str(pref.get("value")),
        timestamp=parse_timestamp(pref.get("timestamp")),
    )


def parse_change(change):
    """One entry of ``entry.changes``."""
    change = _object(change, "change")
    value = _object(change.get("value"), "value")
    names = {
        _str(c.get("wa_id")): _object(c.get("profile"), "profile").get("name")
        for c in _objects(value.get("contacts"), "contacts")
    }
    metadata = _object(value.get("metadata"), "metadata")
    return Change(
        field=_str(change.get("field")),
        phone_number_id=_str(metadata.get("phone_number_id")),
        messages=tuple(
            parse_message(m, names) for m in _objects(value.get("messages"), "messages")
        ),
        statuses=tuple(
            parse_status(s) for s in _objects(value.get("statuses"), "statuses")
        ),
        preferences=tuple(
            parse_preference(p)
            for p in _objects(value.get("user_preferences"), "user_preferences")
        ),
        errors=tuple(parse_error(e) for e in _objects(value.get("errors"), "errors")),
    )


def parse_payload(payload):
    """Every change of every entry of a webhook call, in order."""
    if not isinstance(payload, dict):
        raise PayloadError("payload is not a JSON object")
    return [
        parse_change(change)
        for entry in _objects(payload.get("entry"), "entry")
        for change in _objects(entry.get("changes"), "changes")
    ]
