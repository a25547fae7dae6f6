"""Where an account's access token may be sent: Meta's Graph API over HTTPS,
or a host a system administrator listed (a local stub, a staging proxy)."""

from urllib.parse import urlsplit

META_HOST = "graph.facebook.com"


def parse_allowlist(value):
    """``"stub:8765, staging.example"`` -> ``{("stub", 8765), ("staging.example",
    None)}``; a host without a port allows any port of that host (an IPv6
    address is written in brackets: ``[::1]:8765``)."""
    entries = set()
    for item in (value or "").split(","):
        item = item.strip().lower()
        if not item:
            continue
        host, _sep, port = item.rpartition(":") if ":" in item else (item, "", "")
        if port and not port.isdigit():
            continue
        entries.add((host.strip("[]"), int(port) if port else None))
    return entries


def allowed_api_url(url, allowlist=""):
    """The normalised ``scheme://host[:port][/path]`` of ``url`` if the token
    may go there, else ``None``.

    The URL is rebuilt from its parsed parts, so what was checked is exactly
    what the client calls: no credentials, query, fragment, backslash or
    whitespace is accepted (each parses differently in different libraries).
    """
    url = (url or "").strip()
    if not url or any(c in url for c in "\\@?# \t\r\n") or not url.isascii():
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host:
        return None
    default_port = 443 if parts.scheme == "https" else 80
    if parts.scheme == "https" and host == META_HOST and port in (None, 443):
        allowed = True
    else:
        entries = parse_allowlist(allowlist)
        allowed = (host, None) in entries or (host, port or default_port) in entries
    if not allowed:
        return None
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    return f"{parts.scheme}://{netloc}{parts.path}".rstrip("/")


# Where Meta serves the media its customers send (the URL ``GET /<media id>``
# answers); the token goes with the download.
META_MEDIA_HOSTS = frozenset({"lookaside.fbsbx.com"})


def allowed_media_url(url, base_url):
    """Whether the token may go with a download of ``url``: over HTTPS to
    Meta's media host, or to the account's own (checked) API host, scheme
    and port included. No credentials, backslash or whitespace."""
    url = (url or "").strip()
    if not url or any(c in url for c in "\\@ \t\r\n") or not url.isascii():
        return False
    try:
        parts, base = urlsplit(url), urlsplit(base_url or "")
        port, base_port = parts.port, base.port
    except ValueError:
        return False
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in META_MEDIA_HOSTS and port in (None, 443):
        return True
    return bool(host) and (parts.scheme, host, port) == (
        base.scheme,
        (base.hostname or "").lower(),
        base_port,
    )
