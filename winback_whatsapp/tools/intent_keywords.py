"""What a free-text reply means: the keywords of a rule matched against the
customer's words, ignoring case, accents and punctuation.

A keyword (or a phrase of several words) matches whole words only: "no"
matches "No, grazie" but not "nonna"; "non ora" matches "Ora no? Non ora,
grazie" but not "non è ora".
"""

from .stop_keywords import normalize

# What a reply means, from a tap on a quick-reply button or from its words.
INTENTS = [
    ("interested", "Interested"),
    ("not_now", "Not now"),
    ("stop", "Stop"),
    ("question", "Question"),
]


def split_keywords(keywords):
    """The normalized keywords of a rule written one per line or separated by
    commas (empty ones dropped, order kept, no duplicates)."""
    seen = []
    for raw in (keywords or "").replace("\n", ",").split(","):
        keyword = normalize(raw)
        if keyword and keyword not in seen:
            seen.append(keyword)
    return seen


def matches(text, keywords):
    """Whether ``text`` holds one of ``keywords`` (normalized) as whole
    words."""
    words = f" {normalize(text)} "
    return any(f" {keyword} " in words for keyword in keywords)
