"""Meta-shaped webhook payloads, built from plain values.

Pure functions (no ORM, no clock, no randomness: the caller gives the ids
and the times). Used by the *Simulate reply* action of simulator accounts
and by the tests, so both send what Meta sends
(https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components).
"""


def metadata(phone_number_id, display_phone_number=""):
    """``value.metadata``: the business number a change is for."""
    return {
        "display_phone_number": display_phone_number or "",
        "phone_number_id": phone_number_id,
    }


def envelope(value, field="messages", waba_id="0"):
    """A whole webhook call carrying one change of ``field``."""
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}],
    }


def change_value(metadata, **parts):
    """A change's ``value``: its ``metadata`` (see ``metadata()``) and its
    parts (``contacts``, ``messages``, ``statuses``, ``user_preferences``,
    ``errors``)."""
    return {"messaging_product": "whatsapp", "metadata": metadata, **parts}


def contact(wa_id, name=None):
    """An entry of ``value.contacts``."""
    if name is None:
        return {"wa_id": wa_id}
    return {"profile": {"name": name}, "wa_id": wa_id}


def message(wa_id, wamid, msg_type, content, timestamp, context=None):
    """An entry of ``value.messages``: a customer's message of ``msg_type``
    with its ``content`` (``{"body": ...}`` for text); ``context``: the
    ``(from, wamid)`` of the business message it answers."""
    msg = {
        "from": wa_id,
        "id": wamid,
        "timestamp": str(int(timestamp)),
        "type": msg_type,
        msg_type: content,
    }
    if context:
        msg["context"] = {"from": context[0], "id": context[1]}
    return msg


def media(media_id, mime_type, sha256=None, caption=None, filename=None, voice=None):
    """The content of a media message (``image``, ``audio``, ``video``,
    ``document``, ``sticker``): Meta's media id to download it by, its type
    and checksum; a caption (not for audio nor stickers), a document's file
    name, ``voice`` for an audio recorded in WhatsApp."""
    content = {"mime_type": mime_type, "id": media_id}
    for key, value in (
        ("sha256", sha256),
        ("caption", caption),
        ("filename", filename),
        ("voice", voice),
    ):
        if value is not None:
            content[key] = value
    return content


def status(wamid, state, timestamp, recipient_id=None, **extra):
    """An entry of ``value.statuses`` (``extra``: ``errors``,
    ``biz_opaque_callback_data``, ``conversation``...)."""
    entry = {"id": wamid, "status": state, "timestamp": str(int(timestamp))}
    if recipient_id:
        entry["recipient_id"] = recipient_id
    entry.update(extra)
    return entry


def preference(wa_id, value, timestamp, category="marketing_messages"):
    """An entry of ``value.user_preferences``: ``value`` is ``stop`` or
    ``resume``."""
    detail = {
        "stop": "User requested to stop marketing messages",
        "resume": "User requested to resume marketing messages",
    }.get(value, "")
    return {
        "wa_id": wa_id,
        "detail": detail,
        "category": category,
        "value": value,
        "timestamp": int(timestamp),
    }


# ----------------------------------------------------------------------
# Whole calls
# ----------------------------------------------------------------------


def inbound(
    phone_number_id,
    wa_id,
    wamid,
    msg_type,
    content,
    timestamp,
    *,
    profile_name=None,
    context_wamid=None,
    context_from=None,
    display_phone_number="",
    waba_id="0",
):
    """The call announcing one customer message (any type)."""
    context = context_wamid and (context_from or phone_number_id, context_wamid)
    return envelope(
        change_value(
            metadata(phone_number_id, display_phone_number),
            contacts=[contact(wa_id, profile_name)],
            messages=[message(wa_id, wamid, msg_type, content, timestamp, context)],
        ),
        waba_id=waba_id,
    )


def text_reply(phone_number_id, wa_id, wamid, body, timestamp, **kwargs):
    """A text message, optionally (``context_wamid``) in reply to one of
    ours. ``kwargs``: see ``inbound``."""
    return inbound(
        phone_number_id, wa_id, wamid, "text", {"body": body}, timestamp, **kwargs
    )


def button_tap(phone_number_id, wa_id, wamid, text, payload, timestamp, **kwargs):
    """A tap on a template's quick-reply button (``payload``: the one sent
    with the template, or its text when none was)."""
    return inbound(
        phone_number_id,
        wa_id,
        wamid,
        "button",
        {"payload": payload, "text": text},
        timestamp,
        **kwargs,
    )


def status_update(phone_number_id, wamid, state, timestamp, recipient_id, **extra):
    """The call announcing a status of one of our messages."""
    return envelope(
        change_value(
            metadata(phone_number_id),
            statuses=[status(wamid, state, timestamp, recipient_id, **extra)],
        )
    )


def preference_change(phone_number_id, wa_id, value, timestamp, waba_id="0"):
    """The ``user_preferences`` call: the customer stopped or resumed
    marketing messages."""
    return envelope(
        change_value(
            metadata(phone_number_id),
            contacts=[contact(wa_id)],
            user_preferences=[preference(wa_id, value, timestamp)],
        ),
        field="user_preferences",
        waba_id=waba_id,
    )
