"""Meta's WhatsApp webhook JSON as plain, typed events.

Pure functions, no ORM: the webhook event model walks the ``Change`` list
this returns and hands each event to ``winback.inbound`` (messages,
preferences) or ``winback.status`` (statuses). A payload that does not
have the shape of Meta's webhook raises ``PayloadError``.

Shapes: https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone

MEDIA_TYPES = ("image", "document", "audio", "video", "sticker")
KNOWN_TYPES = (
    "text",
    "button",
    "interactive",
    "reaction",
    "location",
    "order",
    "contacts",
    "edit",
    "revoke",
    "system",
    *MEDIA_TYPES,
)

# How the readable text of an inbound message is to be shown. ``TEXT``: as
# it is. The others are worded by the caller, in the user's language, from
# the message's values:
# ``REACTION`` (the text is the emoji), ``REACTION_REMOVED`` (the reaction
# on ``context_wamid`` was taken back), ``UNSUPPORTED`` (the text names the
# message type), ``ORDER`` (``details``: ``OrderItem``; the text is the
# order's note), ``CONTACTS`` (``details``: ``SharedContact``),
# ``LOCATION`` (``details``: one ``Location``), ``FLOW`` (``details``: the
# submitted ``(field, value)`` pairs), ``CALL_PERMISSION`` (the text is the
# answer: accept, reject), ``INTERACTIVE_ERROR`` (the text is Meta's error,
# if any), ``EDIT`` (the text is the new text, if Meta gives it;
# ``original_wamid``: the message edited, if given), ``DELETED``
# (``original_wamid``: the message deleted), ``SYSTEM`` (the text is Meta's
# notice; ``subtype``: its type; ``new_wa_id``: the new number, if any).
TEXT = "text"
REACTION = "reaction"
REACTION_REMOVED = "reaction_removed"
UNSUPPORTED = "unsupported"
ORDER = "order"
CONTACTS = "contacts"
LOCATION = "location"
FLOW = "flow"
CALL_PERMISSION = "call_permission"
INTERACTIVE_ERROR = "interactive_error"
EDIT = "edit"
DELETED = "deleted"
SYSTEM = "system"

MAP_URL = "https://www.google.com/maps/search/?api=1&query={},{}"


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
    text_kind: str  # TEXT, REACTION, ORDER... (see above)
    payload: str | None  # a quick-reply button's or an interactive reply's id
    context_wamid: str | None  # the message it answers, or reacts to
    timestamp: datetime | None  # naive UTC
    details: tuple = ()  # ORDER, CONTACTS, LOCATION, FLOW: see above
    original_wamid: str | None = None  # EDIT, DELETED: the message changed
    subtype: str | None = None  # system, interactive or unsupported type
    new_wa_id: str | None = None  # SYSTEM: the customer's new number


@dataclass(frozen=True)
class OrderItem:
    """One line of a catalogue order."""

    product_retailer_id: str
    quantity: str
    item_price: str
    currency: str


@dataclass(frozen=True)
class SharedContact:
    """A contact card the customer shared: a name and phone numbers."""

    name: str
    phones: tuple[str, ...] = ()


@dataclass(frozen=True)
class Location:
    """A place the customer shared, with a map link built from its
    coordinates (Meta's ``url`` is the place's own website, if any)."""

    latitude: str
    longitude: str
    name: str = ""
    address: str = ""
    url: str = ""

    @property
    def map_url(self):
        if not (self.latitude and self.longitude):
            return ""
        return MAP_URL.format(self.latitude, self.longitude)


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


def _media(mtype, content):
    if mtype == "audio" and content.get("voice") is True:
        mtype = "voice"
    label = _text(content.get("filename")) or mtype
    caption = _str(content.get("caption"))
    text = f"[{label}] {caption}" if caption else f"[{label}]"
    return text.strip(), TEXT, None


def _order(content):
    items = tuple(
        OrderItem(
            product_retailer_id=_text(item.get("product_retailer_id")),
            quantity=_text(item.get("quantity")),
            item_price=_text(item.get("item_price")),
            currency=_text(item.get("currency")),
        )
        for item in _objects(content.get("product_items"), "product_items")
    )
    return _text(content.get("text")).strip(), items


def _contacts(cards):
    contacts = []
    for card in _objects(cards, "contacts"):
        name = _object(card.get("name"), "name")
        full = _text(name.get("formatted_name")) or " ".join(
            _text(name.get(key)) for key in ("first_name", "last_name")
        )
        phones = tuple(
            _text(phone.get("phone") or phone.get("wa_id"))
            for phone in _objects(card.get("phones"), "phones")
            if phone.get("phone") or phone.get("wa_id")
        )
        contacts.append(SharedContact(name=full.strip(), phones=phones))
    return tuple(contacts)


def _location(content):
    return Location(
        latitude=_text(content.get("latitude")),
        longitude=_text(content.get("longitude")),
        name=_text(content.get("name")).strip(),
        address=_text(content.get("address")).strip(),
        url=_text(content.get("url")),
    )


def flow_fields(response_json):
    """The fields a customer submitted in a Flow (``nfm_reply``), as
    ``(field, value)`` pairs in Meta's order, without the ``flow_token``.
    ``response_json`` is a JSON string; one that is not JSON is kept as one
    field, never an error."""
    if isinstance(response_json, dict):
        data = response_json
    else:
        try:
            data = json.loads(response_json or "{}")
        except (TypeError, ValueError):
            return (("response_json", _text(response_json)),)
    if not isinstance(data, dict):
        return (("response_json", _text(response_json)),)
    return tuple(
        (str(key), _flow_value(value))
        for key, value in data.items()
        if key != "flow_token"
    )


def _flow_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, ensure_ascii=False)


def _interactive(content, errors):
    """``(text, kind, payload, details, subtype)`` of an interactive reply."""
    itype = _str(content.get("type"))
    if itype in ("button_reply", "list_reply") or (
        not itype and (content.get("button_reply") or content.get("list_reply"))
    ):
        reply = _object(
            content.get("button_reply") or content.get("list_reply"), "reply"
        )
        return _text(reply.get("title")).strip(), TEXT, _str(reply.get("id")), (), itype
    if itype == "nfm_reply":
        reply = _object(content.get("nfm_reply"), "nfm_reply")
        fields = flow_fields(reply.get("response_json"))
        return _text(reply.get("body")).strip(), FLOW, None, fields, itype
    if itype == "call_permission_reply":
        reply = _object(content.get("call_permission_reply"), "call_permission_reply")
        return _text(reply.get("response")), CALL_PERMISSION, None, (), itype
    if not itype:
        # No interactive object: WhatsApp could not read it (its error is
        # in the message or in the change).
        text = errors[0].text if errors else ""
        return text, INTERACTIVE_ERROR, None, (), None
    return f"interactive {itype}", UNSUPPORTED, None, (), itype


def readable_text(msg):
    """``(text, text_kind, payload)`` of an inbound message: what it says,
    how to show it (TEXT, REACTION, UNSUPPORTED...) and, for a button tap
    or an interactive reply, the id of what was tapped."""
    return read_message(msg)[:3]


def read_message(msg, errors=()):
    """``(text, text_kind, payload, details, subtype)`` of an inbound
    message (see ``InboundMessage``); ``errors``: the change's own errors,
    which explain an interactive message WhatsApp could not read."""
    mtype = msg.get("type")
    if not isinstance(mtype, str) or mtype not in KNOWN_TYPES:
        if mtype == "unsupported":
            inner = _object(msg.get("unsupported"), "unsupported").get("type")
            if inner == "edit":
                return "", EDIT, None, (), "edit"
            if inner:
                return _text(inner), UNSUPPORTED, None, (), _str(inner)
        return _text(mtype) or "unknown", UNSUPPORTED, None, (), None
    if mtype == "contacts":
        return "", CONTACTS, None, _contacts(msg.get("contacts")), None
    content = _object(msg.get(mtype), mtype)
    if mtype == "text":
        return _text(content.get("body")).strip(), TEXT, None, (), None
    if mtype == "button":
        text = _text(content.get("text")).strip()
        return text, TEXT, _str(content.get("payload")), (), None
    if mtype == "interactive":
        own = tuple(parse_error(e) for e in _objects(msg.get("errors"), "errors"))
        return _interactive(content, own or tuple(errors))
    if mtype == "reaction":
        emoji = _text(content.get("emoji"))
        return emoji, (REACTION if emoji else REACTION_REMOVED), None, (), None
    if mtype in MEDIA_TYPES:
        return (*_media(mtype, content), (), None)
    if mtype == "order":
        text, items = _order(content)
        return text, ORDER, None, items, None
    if mtype == "location":
        return "", LOCATION, None, (_location(content),), None
    if mtype == "edit":
        inner = _object(content.get("message"), "edited message")
        text = read_message(inner)[0] if inner.get("type") in KNOWN_TYPES else ""
        return text, EDIT, None, (), _str(inner.get("type"))
    if mtype == "revoke":
        return "", DELETED, None, (), None
    # system
    return (
        _text(content.get("body")).strip(),
        SYSTEM,
        None,
        (),
        _str(content.get("type")),
    )


def _original_wamid(msg):
    mtype = msg.get("type")
    if mtype in ("edit", "revoke"):
        return _str(_object(msg.get(mtype), mtype).get("original_message_id"))
    return None


def _new_wa_id(msg):
    if msg.get("type") != "system":
        return None
    system = _object(msg.get("system"), "system")
    return _str(system.get("wa_id") or system.get("new_wa_id"))


def parse_message(msg, names=None, errors=()):
    """One entry of ``value.messages``; ``names``: profile names by wa_id
    (from ``value.contacts``); ``errors``: the change's errors."""
    msg = _object(msg, "message")
    text, kind, payload, details, subtype = read_message(msg, errors)
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
        details=details,
        original_wamid=_original_wamid(msg),
        subtype=subtype,
        new_wa_id=_new_wa_id(msg),
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
    errors = tuple(parse_error(e) for e in _objects(value.get("errors"), "errors"))
    return Change(
        field=_str(change.get("field")),
        phone_number_id=_str(metadata.get("phone_number_id")),
        messages=tuple(
            parse_message(m, names, errors)
            for m in _objects(value.get("messages"), "messages")
        ),
        statuses=tuple(
            parse_status(s) for s in _objects(value.get("statuses"), "statuses")
        ),
        preferences=tuple(
            parse_preference(p)
            for p in _objects(value.get("user_preferences"), "user_preferences")
        ),
        errors=errors,
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


# Statuses the webhook event model applies set-based, after everything else.
BATCH_STATUSES = ("sent", "delivered", "read")
_STATUS_ONLY_KEYS = {"messaging_product", "metadata", "statuses", "contacts"}


def is_status_only(payload):
    """Whether a webhook call holds nothing but sent, delivered and read
    statuses: no message, preference, failed status or error.

    A cheap look at the raw JSON, made when the call is stored: such calls
    wait behind replies, preferences and failures (which keep the order
    they came in). Anything else, a shape this does not know included, is
    not status-only."""
    try:
        changes = [change for entry in payload["entry"] for change in entry["changes"]]
        if not changes:
            return False
        for change in changes:
            value = change["value"]
            statuses = value["statuses"]
            if (
                change.get("field") != "messages"
                or set(value) - _STATUS_ONLY_KEYS
                or not isinstance(statuses, list)
                or not statuses
                or any(status["status"] not in BATCH_STATUSES for status in statuses)
            ):
                return False
    except (KeyError, TypeError, AttributeError):
        return False
    return True
