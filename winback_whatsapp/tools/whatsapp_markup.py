"""WhatsApp's text formatting as HTML, for the phone preview."""

import re

from markupsafe import Markup, escape

# WhatsApp's own formatting: *bold*, _italic_, ~strikethrough~, on escaped text.
WHATSAPP_STYLES = [
    (re.compile(r"\*(?=\S)([^*\n]*?\S)\*"), "strong"),
    (re.compile(r"(?<![\w])_(?=\S)([^_\n]*?\S)_(?![\w])"), "em"),
    (re.compile(r"~(?=\S)([^~\n]*?\S)~"), "s"),
]


def whatsapp_markup(text):
    """``text`` as HTML the way WhatsApp shows it: escaped, line breaks kept,
    *bold*, _italic_ and ~strikethrough~ applied."""
    html = str(escape(text or ""))
    for pattern, tag in WHATSAPP_STYLES:
        html = pattern.sub(rf"<{tag}>\1</{tag}>", html)
    return Markup(html.replace("\n", "<br/>"))
