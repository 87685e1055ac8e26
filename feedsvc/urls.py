"""Site paths, links and ids → the URIs feeds and pages publish: absolute and percent-encoded.

Every URL feedsvc writes passes through here, so a file named by hand (`my pic.png`,
`café.png`) or a link pasted from elsewhere (`//cdn…`) comes out as a URI that validators
and readers accept, and an id that is already a valid URI is never rewritten.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote, urljoin

# What a URI holds as written: RFC 3986's unreserved and reserved characters and escapes;
# "[" and "]" only around an IPv6 host, so they are encoded after the authority.
_NEEDS_ENCODING = re.compile(r"[^A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]|%(?![0-9A-Fa-f]{2})")
_AUTHORITY = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
# The characters of a URI as the W3C Feed Validator reads it (RFC 2396: no "[" or "]").
_URIC = r"[0-9A-Za-z;/?:@&=+$.\-_!~*'()%,]"
_VALID_URI = re.compile(rf"^[A-Za-z][A-Za-z0-9+.\-]*:(?:{_URIC}|#)+$")
# RFC 4151: tag:[name@]domain,YYYY[-MM[-DD]]:specific[#fragment]
_TAG_URI = re.compile(
    rf"^tag:(?:[a-z0-9._\-]+@)?[a-z0-9.\-]+,\d{{4}}(?:-\d\d(?:-\d\d)?)?:{_URIC}*(?:#{_URIC}*)?$"
)
# RFC 8141: urn:NID:NSS, a namespace of 2 to 32 letters, digits and hyphens.
_URN = re.compile(
    r"^urn:[a-z0-9][a-z0-9\-]{1,31}:(?:[a-z0-9()+,.:=@;$_!*'\-]|%[0-9a-f]{2})+$", re.I
)
_UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$", re.I)
_NEEDS_HOST = {"http", "https", "ftp"}
# Schemes registered with IANA (https://www.iana.org/assignments/uri-schemes) that an item
# id or a link in a magazine might use; validators warn about any other scheme.
REGISTERED_SCHEMES = frozenset(
    "http https ftp mailto news nntp tel sms fax geo tag urn data file info dns xmpp sip "
    "sips im pres irc ircs ldap cid mid telnet gopher wais prospero dav imap pop rtsp "
    "snmp tftp ipp dict crid tv".split()
)


def encode_uri(text: str) -> str:
    """Percent-encode what a URI cannot hold (spaces, letters outside ASCII), nothing else.

    Escapes already written (`%20`) stay as they are, so encoding twice changes nothing.
    """
    authority = _AUTHORITY.match(text)
    start = authority.end() if authority else 0
    head = _ascii_host(text[:start]) if start and not text[:start].isascii() else text[:start]
    if head == text[:start] and _NEEDS_ENCODING.search(text, start) is None:
        return text
    return head + _NEEDS_ENCODING.sub(lambda m: quote(m.group(), safe=""), text[start:])


def _ascii_host(authority: str) -> str:
    """Write a host name in letters outside ASCII ("café.example") as IDNA, as DNS knows it."""
    scheme, _, rest = authority.partition("://")
    userinfo, at, host_port = rest.rpartition("@")
    host, colon, port = host_port.partition(":")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:  # not a name IDNA can write: escape it like the rest
        host = quote(host, safe="")
    return f"{scheme}://{quote(userinfo, safe=':%')}{at}{host}{colon}{port}"


def absolute_url(link: str, site_url: str, base_url: str) -> str:
    """Make a link absolute and percent-encoded, the one way every feed link is made.

    "/media/x.jpg" joins SITE_URL, "//host/x" takes SITE_URL's scheme, a relative link
    joins `base_url`; a link with a scheme (https:, mailto:, tel:) keeps it.
    """
    link = link.strip()
    if link.startswith("//"):
        link = site_url.split(":", 1)[0] + ":" + link
    elif link.startswith("/"):
        link = site_url.rstrip("/") + link
    elif not _SCHEME.match(link):
        link = urljoin(base_url, encode_uri(link))
    return encode_uri(link)


def item_id(explicit_id: str) -> str:
    """Return the id published for an author's `id:`: a URI as written, or a name-based URN.

    A valid URI stays exactly as written, whatever its scheme, so readers never see an item
    twice; one with characters a URI cannot hold is percent-encoded if that makes it
    valid. Anything else is a name, published as a UUID URN made from it.
    """
    if _SCHEME.match(explicit_id):
        if uri_is_valid(explicit_id):
            return explicit_id
        encoded = encode_uri(explicit_id)
        if uri_is_valid(encoded) and scheme_of(encoded) in REGISTERED_SCHEMES:
            return encoded
    return uuid.uuid5(uuid.NAMESPACE_URL, explicit_id).urn


def scheme_of(uri: str) -> str:
    """Return a URI's scheme, lower-cased; "" when it has none."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else ""


def uri_is_valid(uri: str) -> bool:
    """Tell whether the validator takes `uri` for a full URI (tag: and urn: by their syntax)."""
    scheme = scheme_of(uri)
    if scheme == "tag":
        return _TAG_URI.match(uri) is not None
    if scheme == "urn":
        return (_UUID_URN if uri.lower().startswith("urn:uuid:") else _URN).match(uri) is not None
    if _VALID_URI.match(uri) is None:
        return False
    return scheme not in _NEEDS_HOST or re.match(r"^[A-Za-z]+://[^/]", uri) is not None
