"""What a customer's WhatsApp media may be, checked before it is kept.

Plain Python, no ORM. The types are the ones WhatsApp supports
(developers.facebook.com/docs/whatsapp/cloud-api/reference/media, "Supported
media types"); a document may also be a photo, a recording or a video sent
as a file. The bytes are recognised by their signature (Odoo's
``guess_mimetype``, completed for the audio and video containers it does not
know): a file whose bytes are not of the family its declared type says (an
HTML page or a script sent as a "photo") is refused.
"""

import base64
import binascii
import hashlib
import re
import unicodedata

from odoo.tools.mimetypes import guess_mimetype

# The webhook's type, and "voice" (an audio message recorded in WhatsApp).
MEDIA_KINDS = ("image", "audio", "voice", "video", "document", "sticker")

# Each allowed type and its family: types of one family share a signature
# (mp4 and 3gpp are both ISO containers; doc, xls and ppt are OLE files).
FAMILY = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "webp",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/mpeg": "mpeg",
    "audio/mp4": "iso",
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "video/mp4": "iso",
    "video/3gpp": "iso",
    "video/3gp": "iso",
    "text/plain": "text",
    "application/pdf": "pdf",
    "application/msword": "ole",
    "application/vnd.ms-excel": "ole",
    "application/vnd.ms-powerpoint": "ole",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "pptx"
    ),
}
_IMAGES = ("image/jpeg", "image/png")
_AUDIO = ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")
_VIDEO = ("video/mp4", "video/3gpp", "video/3gp")
_DOCUMENTS = (
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)
ALLOWED = {
    "image": _IMAGES,
    "sticker": ("image/webp",),
    "audio": (*_AUDIO, "audio/opus"),
    "voice": (*_AUDIO, "audio/opus"),
    "video": _VIDEO,
    "document": (*_DOCUMENTS, *_IMAGES, *_AUDIO, *_VIDEO),
}
# Types with no signature: their bytes are accepted when nothing else is
# recognised in them.
NO_SIGNATURE = frozenset({"text"})

EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "audio/aac": "aac",
    "audio/amr": "amr",
    "audio/mpeg": "mp3",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "video/mp4": "mp4",
    "video/3gpp": "3gp",
    "video/3gp": "3gp",
    "text/plain": "txt",
    "application/pdf": "pdf",
    "application/msword": "doc",
    "application/vnd.ms-excel": "xls",
    "application/vnd.ms-powerpoint": "ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        "pptx"
    ),
}

MAX_FILENAME = 120
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]+')


def base_type(mimetype):
    """``"audio/ogg; codecs=opus"`` -> ``"audio/ogg"``; ``""`` for nothing."""
    return (mimetype or "").split(";")[0].strip().lower()


def is_allowed(kind, mimetype):
    """Whether WhatsApp sends media of ``kind`` with this type."""
    return base_type(mimetype) in ALLOWED.get(kind, ())


def sniff(data):
    """The type the bytes' signature says, or ``application/octet-stream``."""
    found = guess_mimetype(data or b"")
    if found != "application/octet-stream":
        return found
    head = bytes(data[:16])
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 is AAC in ADTS.
        return "audio/aac" if head[1] & 0x06 == 0 else "audio/mpeg"
    return "application/octet-stream"


def check_content(kind, data, *declared):
    """The type to keep the bytes under, or ``None`` when they are refused:
    every type declared for them (by the webhook, the media's metadata, the
    download's Content-Type) must be allowed for ``kind`` and of the family
    the bytes' signature says. ``application/octet-stream`` declares
    nothing."""
    declared = [
        base_type(d)
        for d in declared
        if base_type(d) and base_type(d) != "application/octet-stream"
    ]
    if not declared or not all(is_allowed(kind, d) for d in declared):
        return None
    families = {FAMILY[d] for d in declared}
    if len(families) != 1:
        return None
    (family,) = families
    found = sniff(data)
    if found == "application/octet-stream":
        return declared[0] if family in NO_SIGNATURE else None
    if FAMILY.get(found) != family:
        return None
    return found if is_allowed(kind, found) else declared[0]


def sha256_matches(data, expected):
    """Whether ``data`` has the SHA-256 ``expected``, given in base64 (as in
    the webhook) or in hex; nothing expected matches."""
    expected = (expected or "").strip()
    if not expected:
        return True
    digest = hashlib.sha256(data).digest()
    if re.fullmatch(r"[0-9a-fA-F]{64}", expected):
        return digest.hex() == expected.lower()
    try:
        return base64.b64decode(expected, validate=True) == digest
    except (binascii.Error, ValueError):
        return False


def safe_filename(name, mimetype, fallback):
    """A file name to show and download: no folder, no control nor reserved
    character, at most ``MAX_FILENAME`` characters, with the extension of
    its type; ``fallback`` (without extension) when nothing is left."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    extension = EXTENSIONS.get(base_type(mimetype), "bin")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if ext.lower() != extension and not (extension == "jpg" and ext.lower() == "jpeg"):
        stem, ext = name, extension
    stem = stem.strip(" .") or fallback
    stem = stem[: MAX_FILENAME - len(ext) - 1]
    return f"{stem}.{ext}"
