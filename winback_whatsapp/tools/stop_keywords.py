"""Opt-out / opt-in keywords of WhatsApp replies, in several languages.

A reply is a keyword only when the WHOLE message is the keyword, ignoring
case, accents, punctuation and spaces around it: "Stop!" or "arrêt" opt
out, "please stop sending" is a normal reply for a human to read.
"""

import re
import unicodedata

STOP_KEYWORDS = frozenset(
    {
        "stop",
        "stopp",
        "stopall",
        "stop all",
        "arret",
        "basta",
        "cancella",
        "cancellami",
        "disiscrivimi",
        "disiscrivi",
        "baja",
        "darse de baja",
        "parar",
        "para",
        "cancelar",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "desabonner",
        "desinscrire",
        "abmelden",
        "austragen",
        "afmelden",
        "sair",
    }
)
START_KEYWORDS = frozenset(
    {"start", "unstop", "subscribe", "iscrivimi", "alta", "reprendre", "avvia"}
)


def normalize(text):
    """Lower case, accents removed, punctuation dropped, spaces collapsed."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"[^\w\s]|_", " ", text.casefold())
    return " ".join(text.split())


def is_stop(text):
    return normalize(text) in STOP_KEYWORDS


def is_start(text):
    return normalize(text) in START_KEYWORDS
