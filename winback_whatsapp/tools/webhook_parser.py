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
    # Media (image, audio, video, document, sticker): Meta's media id, to
    # download it; the declared type and checksum; the document's file name;
    # the caption; whether an audio is a voice message recorded in WhatsApp.
    media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    caption: str | None = None
    voice: bool = False

    @property
    def media_kind(self):
        """image, audio, voice, video, document or sticker; None for a
        message without media."""
        if self.type not in MEDIA_TYPES or not self.media_id:
            return None
        return "voice" if self.voice else self.type

    # The business-scoped user ID (BSUID) of the sender, always given since
    # April 2026, when ``wa_id`` (the number) may be missing; the username
    # they chose on WhatsApp, if any.
    user_id: str | None = None
    username: str | None = None
    # SYSTEM (user_changed_user_id, user_changed_number): the sender's
    # previous BSUID and the new one.
    previous_user_id: str | None = None
    new_user_id: str | None = None


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
class Pricing:
    """The ``pricing`` object of a status: whether Meta charges the message,
    under which pricing model (``PMP``, per message, since July 2025;
    ``CBP``, per conversation, before) and category (``marketing``,
    ``utility``, ``authentication``, ``authentication_international``,
    ``marketing_lite``, ``service``, ``referral_conversion``...), and of
    which type (``regular``, ``free_customer_service``,
    ``free_entry_point``). ``billable`` is None when Meta leaves it out:
    it is deprecated with per-message pricing, where ``type`` says it."""

    billable: bool | None
    pricing_model: str | None
    category: str | None
    type: str | None = None

    @property
    def charged(self):
        """Whether Meta charges the message: its ``billable`` flag, or when
        absent its type (only ``regular`` messages are charged)."""
        if self.billable is not None:
            return self.billable
        return self.type == "regular" if self.type else None


@dataclass(frozen=True)
class StatusEvent:
    """What became of a message the business sent."""

    wamid: str | None
    status: str | None
    timestamp: datetime | None  # naive UTC
    recipient_id: str | None
    biz_opaque_callback_data: str | None
    errors: tuple[MetaError, ...] = ()
    recipient_user_id: str | None = None  # the recipient's BSUID
    pricing: Pricing | None = None

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
    user_id: str | None = None  # the customer's BSUID


@dataclass(frozen=True)
class UserIdUpdate:
    """A ``user_id_update`` change: a customer's BSUID was replaced (Meta
    regenerates it when the customer changes number)."""

    previous_user_id: str | None
    user_id: str | None
    wa_id: str | None
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
    # Account signals (see ``SIGNAL_FIELDS``): the WhatsApp Business Account
    # the change names (``entry.id``, or ``waba_info.waba_id``), its event.
    waba_id: str | None = None
    signals: tuple = ()
    # A field Win-back does not use: stored, never read (``KNOWN_FIELDS``).
    ignored: bool = False
    user_id_updates: tuple[UserIdUpdate, ...] = ()


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


def _system_user_ids(msg):
    """``(previous BSUID, new BSUID)`` of a system message, if it names
    them."""
    if msg.get("type") != "system":
        return None, None
    system = _object(msg.get("system"), "system")
    return _str(system.get("previous_user_id")), _str(system.get("user_id"))


def parse_message(msg, names=None, errors=(), usernames=None):
    """One entry of ``value.messages``; ``names``: profile names by wa_id
    and by BSUID, ``usernames``: usernames by BSUID (from
    ``value.contacts``); ``errors``: the change's errors."""
    msg = _object(msg, "message")
    text, kind, payload, details, subtype = read_message(msg, errors)
    wa_id = _str(msg.get("from"))
    user_id = _str(msg.get("from_user_id"))
    previous_user_id, new_user_id = _system_user_ids(msg)
    names = names or {}
    context_wamid = _str(_object(msg.get("context"), "context").get("id"))
    if msg.get("type") == "reaction":
        reaction = _object(msg.get("reaction"), "reaction")
        context_wamid = _str(reaction.get("message_id"))
    return InboundMessage(
        wamid=_str(msg.get("id")),
        wa_id=wa_id,
        profile_name=_str(names.get(wa_id) or names.get(user_id)),
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
        **_media_values(msg),
        user_id=user_id,
        username=_str((usernames or {}).get(user_id)),
        previous_user_id=previous_user_id,
        new_user_id=new_user_id,
    )


def _media_values(msg):
    """The media fields of ``InboundMessage`` for a media message."""
    mtype = msg.get("type")
    if mtype not in MEDIA_TYPES:
        return {}
    content = _object(msg.get(mtype), mtype)
    return {
        "media_id": _str(content.get("id")),
        "mime_type": _str(content.get("mime_type")),
        "sha256": _str(content.get("sha256")),
        "filename": _str(content.get("filename")),
        "caption": _str(content.get("caption")),
        "voice": mtype == "audio" and content.get("voice") is True,
    }


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
        recipient_user_id=_str(status.get("recipient_user_id")),
        pricing=parse_pricing(status.get("pricing")),
    )


def parse_pricing(pricing):
    """A status's ``pricing`` object, or None when it has none."""
    if pricing is None:
        return None
    pricing = _object(pricing, "pricing")
    billable = pricing.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else None,
        pricing_model=_str(pricing.get("pricing_model")),
        category=_str(pricing.get("category")),
        type=_str(pricing.get("type")),
    )


def parse_preference(pref):
    """One entry of ``value.user_preferences``."""
    pref = _object(pref, "user preference")
    return PreferenceEvent(
        wa_id=_str(pref.get("wa_id")),
        category=_str(pref.get("category")),
        value=_str(pref.get("value")),
        timestamp=parse_timestamp(pref.get("timestamp")),
        user_id=_str(pref.get("user_id")),
    )


def parse_user_id_update(update):
    """One entry of ``value.user_id_update``: ``user_id`` is
    ``{"previous": ..., "current": ...}``."""
    update = _object(update, "user id update")
    user_id = _object(update.get("user_id"), "user_id")
    return UserIdUpdate(
        previous_user_id=_str(user_id.get("previous")),
        user_id=_str(user_id.get("current")),
        wa_id=_str(update.get("wa_id")),
        timestamp=parse_timestamp(update.get("timestamp")),
    )


def parse_change(change, waba_id=None):
    """One entry of ``entry.changes``; ``waba_id``: its entry's id."""
    change = _object(change, "change")
    field = _str(change.get("field"))
    if field is not None and field not in KNOWN_FIELDS:
        return Change(field=field, phone_number_id=None, ignored=True)
    value = _object(change.get("value"), "value")
    if field in SIGNAL_FIELDS:
        return parse_signal_change(field, value, _str(waba_id))
    contacts = _objects(value.get("contacts"), "contacts")
    names = {
        _str(c.get(key)): _object(c.get("profile"), "profile").get("name")
        for c in contacts
        for key in ("wa_id", "user_id")
        if c.get(key)
    }
    usernames = {
        _str(c.get("user_id")): _object(c.get("profile"), "profile").get("username")
        for c in contacts
        if c.get("user_id")
    }
    metadata = _object(value.get("metadata"), "metadata")
    errors = tuple(parse_error(e) for e in _objects(value.get("errors"), "errors"))
    return Change(
        field=_str(change.get("field")),
        phone_number_id=_str(metadata.get("phone_number_id")),
        messages=tuple(
            parse_message(m, names, errors, usernames)
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
        user_id_updates=tuple(
            parse_user_id_update(u)
            for u in _objects(value.get("user_id_update"), "user_id_update")
        ),
    )


def parse_payload(payload):
    """Every change of every entry of a webhook call, in order."""
    if not isinstance(payload, dict):
        raise PayloadError("payload is not a JSON object")
    return [
        parse_change(change, entry.get("id"))
        for entry in _objects(payload.get("entry"), "entry")
        for change in _objects(entry.get("changes"), "changes")
    ]


# ----------------------------------------------------------------------
# Account signals: the WhatsApp Business Account's fields
# ----------------------------------------------------------------------
# https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/
# (message_template_status_update, message_template_quality_update,
# phone_number_quality_update, account_update, business_capability_update).
# Their ``value`` has no ``metadata``: the account they are about is the
# entry's id, the WhatsApp Business Account ID.

TEMPLATE_STATUS_FIELD = "message_template_status_update"
TEMPLATE_QUALITY_FIELD = "message_template_quality_update"
PHONE_QUALITY_FIELD = "phone_number_quality_update"
ACCOUNT_UPDATE_FIELD = "account_update"
CAPABILITY_FIELD = "business_capability_update"
SIGNAL_FIELDS = (
    TEMPLATE_STATUS_FIELD,
    TEMPLATE_QUALITY_FIELD,
    PHONE_QUALITY_FIELD,
    ACCOUNT_UPDATE_FIELD,
    CAPABILITY_FIELD,
)
# The fields Win-back reads. A change of any other field (calls, history,
# smb_message_echoes, template_category_update...) is kept as received and
# marked ignored, never parsed. A change without a field is read as
# ``messages`` (Meta always names it; some tools do not).
KNOWN_FIELDS = ("messages", "user_preferences", "user_id_update", *SIGNAL_FIELDS)

# Meta's messaging limit tiers: unique customers a business may start
# conversations with in a rolling 24 hours (0: no limit). TIER_1K is the
# tier TIER_2K replaced in 2025; older payloads still carry it.
LIMIT_TIERS = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1000,
    "TIER_2K": 2000,
    "TIER_10K": 10000,
    "TIER_100K": 100000,
    "TIER_UNLIMITED": 0,
}
TIER_NOT_SET = "TIER_NOT_SET"


def limit_tier(value):
    """Meta's messaging limit as a tier code (``TIER_2K``...) from a tier
    code or from a number of customers (``business_capability_update``
    sends ``2000``, or ``-1`` for no limit); None when missing, and the
    text itself when it is no tier Meta documents."""
    text = _str(value)
    if text is None:
        return None
    text = text.strip().upper()
    if text.lstrip("-").isdigit():
        count = int(text)
        if count < 0:
            return "TIER_UNLIMITED"
        return next(
            (tier for tier, size in LIMIT_TIERS.items() if size == count and size),
            text,
        )
    return text


@dataclass(frozen=True)
class TemplateStatusEvent:
    """``message_template_status_update``: Meta reviewed, paused, flagged,
    disabled, archived... a template."""

    event: str | None  # APPROVED, REJECTED, PAUSED, FLAGGED, DISABLED...
    template_id: str | None
    name: str | None
    language: str | None
    reason: str | None  # NONE, INVALID_FORMAT, PROMOTIONAL...
    category: str | None
    title: str | None = None  # other_info: FIRST_PAUSE, SECOND_PAUSE...
    description: str = ""  # other_info: Meta's sentence
    disable_date: datetime | None = None  # naive UTC
    rejection_reason: str = ""
    recommendation: str = ""


@dataclass(frozen=True)
class TemplateQualityEvent:
    """``message_template_quality_update``: GREEN, YELLOW, RED or UNKNOWN."""

    template_id: str | None
    name: str | None
    language: str | None
    previous_score: str | None
    new_score: str | None


@dataclass(frozen=True)
class PhoneQualityEvent:
    """``phone_number_quality_update``: the number's quality or messaging
    limit changed. ``current_limit`` is gone from February 2026, replaced
    by ``max_daily_conversations_per_business``: both are read."""

    event: str | None  # FLAGGED, UNFLAGGED, DOWNGRADE, UPGRADE, ONBOARDING...
    display_phone_number: str | None
    current_limit: str | None
    old_limit: str | None
    max_daily_conversations_per_business: str | None

    @property
    def limit(self):
        """The messaging limit tier, the new field first."""
        return limit_tier(self.max_daily_conversations_per_business) or limit_tier(
            self.current_limit
        )


@dataclass(frozen=True)
class Restriction:
    """One ``restriction_info`` of an ACCOUNT_RESTRICTION."""

    restriction_type: str | None
    expiration: datetime | None  # naive UTC
    remediation: str = ""


@dataclass(frozen=True)
class AccountUpdateEvent:
    """``account_update``: a restriction, a violation, a ban, a deletion, an
    offboarding... of the WhatsApp Business Account."""

    event: str | None
    restrictions: tuple[Restriction, ...] = ()
    violation_type: str | None = None
    ban_state: str | None = None  # DISABLE, REINSTATE, SCHEDULE_FOR_DISABLE
    ban_date: str | None = None  # as Meta words it: "April 17, 2025"
    disconnection_reason: str | None = None


@dataclass(frozen=True)
class CapabilityEvent:
    """``business_capability_update``: the business's limits changed."""

    max_daily_conversations_per_business: str | None
    max_daily_conversation_per_phone: str | None
    max_phone_numbers_per_business: str | None = None
    max_phone_numbers_per_waba: str | None = None

    @property
    def limit(self):
        """The messaging limit tier, the new field first."""
        return limit_tier(self.max_daily_conversations_per_business) or limit_tier(
            self.max_daily_conversation_per_phone
        )


def _template_status(value):
    other = _object(value.get("other_info"), "other_info")
    rejection = _object(value.get("rejection_info"), "rejection_info")
    disable = _object(value.get("disable_info"), "disable_info")
    return TemplateStatusEvent(
        event=_str(value.get("event")),
        template_id=_str(value.get("message_template_id")),
        name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")),
        reason=_str(value.get("reason")),
        category=_str(value.get("message_template_category")),
        title=_str(other.get("title")),
        description=_text(other.get("description")).strip(),
        disable_date=parse_timestamp(disable.get("disable_date")),
        rejection_reason=_text(rejection.get("reason")).strip(),
        recommendation=_text(rejection.get("recommendation")).strip(),
    )


def _template_quality(value):
    return TemplateQualityEvent(
        template_id=_str(value.get("message_template_id")),
        name=_str(value.get("message_template_name")),
        language=_str(value.get("message_template_language")),
        previous_score=_str(value.get("previous_quality_score")),
        new_score=_str(value.get("new_quality_score")),
    )


def _phone_quality(value):
    return PhoneQualityEvent(
        event=_str(value.get("event")),
        display_phone_number=_str(value.get("display_phone_number")),
        current_limit=_str(value.get("current_limit")),
        old_limit=_str(value.get("old_limit")),
        max_daily_conversations_per_business=_str(
            value.get("max_daily_conversations_per_business")
        ),
    )


def _account_update(value):
    ban = _object(value.get("ban_info"), "ban_info")
    violation = _object(value.get("violation_info"), "violation_info")
    disconnection = _object(value.get("disconnection_info"), "disconnection_info")
    return AccountUpdateEvent(
        event=_str(value.get("event")),
        restrictions=tuple(
            Restriction(
                restriction_type=_str(r.get("restriction_type")),
                expiration=parse_timestamp(r.get("expiration")),
                remediation=_text(r.get("remediation")).strip(),
            )
            for r in _objects(value.get("restriction_info"), "restriction_info")
        ),
        violation_type=_str(violation.get("violation_type")),
        ban_state=_str(ban.get("waba_ban_state")),
        ban_date=_str(ban.get("waba_ban_date")),
        disconnection_reason=_str(disconnection.get("reason")),
    )


def _capability(value):
    return CapabilityEvent(
        max_daily_conversations_per_business=_str(
            value.get("max_daily_conversations_per_business")
        ),
        max_daily_conversation_per_phone=_str(
            value.get("max_daily_conversation_per_phone")
        ),
        max_phone_numbers_per_business=_str(
            value.get("max_phone_numbers_per_business")
        ),
        max_phone_numbers_per_waba=_str(value.get("max_phone_numbers_per_waba")),
    )


SIGNAL_PARSERS = {
    TEMPLATE_STATUS_FIELD: _template_status,
    TEMPLATE_QUALITY_FIELD: _template_quality,
    PHONE_QUALITY_FIELD: _phone_quality,
    ACCOUNT_UPDATE_FIELD: _account_update,
    CAPABILITY_FIELD: _capability,
}


def parse_signal_change(field, value, waba_id=None):
    """A change of one of the ``SIGNAL_FIELDS``, with the WhatsApp Business
    Account it names: the entry's id, or for the partner events of
    ``account_update`` (whose entry is the partner's business) the
    ``waba_info.waba_id``."""
    waba_info = _object(value.get("waba_info"), "waba_info")
    return Change(
        field=field,
        phone_number_id=None,
        waba_id=_str(waba_info.get("waba_id")) or waba_id,
        signals=(SIGNAL_PARSERS[field](value),),
    )


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
