"""Links in the text of a message: found and replaced.

Plain Python, no ORM. Links are found with Odoo's own pattern for links in
plain text (``odoo.tools.mail.TEXT_URL_REGEX``, what SMS mailings shorten).
"""

import re

from odoo.tools.mail import TEXT_URL_REGEX

# What may follow a link without being part of it (Odoo's SMS shortener
# uses the same guard): a replaced link is never the start of a longer one.
LINK_END = r"(?![\w@:%.+&~#=/-])"


def find_urls(texts):
    """The links of ``texts`` (an iterable of strings), each once, in the
    order they first appear."""
    found = {}
    for text in texts:
        for url in re.findall(TEXT_URL_REGEX, text or ""):
            found.setdefault(url, None)
    return list(found)


def replace_urls(text, replacements):
    """``text`` with each link that is a key of ``replacements`` replaced by
    its value; links that are only the start of a longer one are kept."""
    if not text or not replacements:
        return text
    # The longest first: a link that starts another is tried after it.
    urls = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(
        "(?:" + "|".join(re.escape(url) for url in urls) + ")" + LINK_END
    )
    return pattern.sub(lambda match: replacements[match.group(0)], text)
