"""The W3C Feed Validator's rules that a generated feed can break, as a test helper.

The validator itself is not installable here, so its documented errors and warnings are
checked directly; each problem string starts with the validator's message name.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from html.entities import name2codepoint
from urllib.parse import urlsplit

import html5lib
from lxml import etree

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC = "{http://purl.org/dc/elements/1.1/}"
DCTERMS_MODIFIED = "{http://purl.org/dc/terms/}modified"
MEDIA_CONTENT = "{http://search.yahoo.com/mrss/}content"
TOMBSTONES = "{http://purl.org/atompub/tombstones/1.0}"
DELETED_ENTRY = f"{TOMBSTONES}deleted-entry"

# Elements and attributes the validator accepts in HTML content; others are "security risks".
SAFE_ELEMENTS = set(
    "a abbr acronym address area article aside audio b bdi big blockquote br button canvas "
    "caption center cite code col colgroup data dd del details dfn dir div dl dt em "
    "fieldset figcaption figure footer font form header h1 h2 h3 h4 h5 h6 hgroup hr i img "
    "input ins kbd label legend li main map mark menu meter nav ol optgroup option output "
    "p picture pre progress q rp rt ruby s samp section select small source span strike "
    "strong sub summary sup table tbody td template textarea time tfoot th thead tr track "
    "tt u ul var video noscript wbr".split()
)
SAFE_ATTRIBUTES = set(
    "abbr accept accept-charset accesskey action align alt autoplay axis bgcolor border "
    "cellpadding cellspacing char charoff charset checked cite class clear color cols "
    "colspan compact controls coords datetime decoding dir disabled download enctype face "
    "for headers height href hreflang hspace id ismap label lang loading longdesc loop "
    "maxlength media method multiple name nohref noshade nowrap poster preload readonly rel "
    "rev reversed rows rowspan rules scope selected shape size sizes span src srcset start "
    "summary tabindex target title type usemap valign value vspace width xml:lang".split()
)
URL_ATTRIBUTES = {"href", "src", "cite", "poster", "longdesc", "action", "background"}
RFC822 = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"\d{4} \d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT|Z)$"
)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
EMAIL = re.compile(r"^[\w.+'-]+@[\w-]+(\.[\w-]+)+( \(.+\))?$")
MIME = re.compile(r"^[a-z]+/[\w.+-]+$")
MEDIA_DESCRIPTION = "{http://search.yahoo.com/mrss/}description"
# Tag names the validator knows as HTML: an end tag of one in plain text is "ContainsHTML".
HTML_TAGS = SAFE_ELEMENTS | set(
    "applet base basefont body command datagrid datalist dialog embed eventsource frame "
    "frameset head html iframe isindex link listing m meta noframes object param plaintext "
    "script slot style title xmp comment".split()
)
# RFC 2396 as the validator reads it: the characters a URI may hold, and a full URI.
URIC = r"[0-9a-zA-Z;/?:@&=+$.\-_!~*'()%,]"
URI_CHAR = re.compile(rf"{URIC}|#")
FULL_URI = re.compile(rf"^[a-zA-Z][0-9a-zA-Z+.\-]*:(?:{URIC}|#)+$")
# tag: (RFC 4151) and urn: (RFC 8141) ids are checked against their own grammar.
TAG_URI = re.compile(
    rf"^tag:(?:[a-z0-9._\-]+@)?[a-z0-9.\-]+,[0-9]{{4}}(?:-[0-9]{{2}}){{0,2}}:{URIC}*(?:#{URIC}*)?$"
)
URN = re.compile(r"^urn:[a-z0-9][a-z0-9-]{1,31}:(?:%[0-9a-f]{2}|[a-z0-9()+,.:=@;$_!*'-])+$", re.I)
UUID_URN = re.compile(
    "^urn:uuid:" + "-".join(f"[0-9a-f]{{{n}}}" for n in (8, 4, 4, 4, 12)) + "$", re.I
)
# URI schemes registered with IANA (https://www.iana.org/assignments/uri-schemes), a selection.
IANA_SCHEMES = set(
    "aaa aaas acap cap cid crid data dav dict dns fax file ftp geo go gopher h323 http https "
    "iax icap im imap info ipp iris ldap mailto mid modem msrp msrps mtqp mupdate news nfs "
    "nntp opaquelocktoken pop pres prospero rtsp service shttp sip sips sms snmp tag tel "
    "telnet tftp tip tv urn vemmi wais xmpp".split()
)
# In RSS plain text, a "<" or character reference is CharacterData unless the lines show
# the RSS profile's hexadecimal references ("&#x3C;"); "&name" looks like HTML.
CHARACTER_DATA = re.compile(r"&#[x0-9]|<[/a-zA-Z]")
HTML_END_TAG = re.compile(r"</(\w+)>")
HTML_ENTITY = re.compile(r"&(#?\w+)")


# Characters the validator calls BadCharacters in any text or attribute: C1 controls
# (Windows-1252 text read as Latin-1) and U+FFFD (text garbled by a decoder).
BAD_CHARACTERS = re.compile("[\x80-\x9f\ufffd]")
# An e-mail address in angle brackets, which the validator flags in names (ContainsEmail).
ANGLE_EMAIL = re.compile(r"<[^<>@\s]+@[^<>\s]+\.[^<>\s]+>")


def feed_problems(document: bytes) -> list[str]:
    """Return every validator rule the RSS 2.0 or Atom 1.0 document breaks."""
    root = etree.fromstring(document)
    if root.tag == "rss":
        hex_lines = [b"&#x" in line for line in document.split(b"\n")]
        return _bad_characters(root) + _rss_problems(root, hex_lines)
    if root.tag == f"{ATOM}feed":
        return _bad_characters(root) + _atom_problems(root) + _tombstone_problems(root)
    return [f"UnknownFeedType: root element {root.tag}"]


def _bad_characters(root) -> list[str]:
    problems = []
    for element in root.iter(etree.Element):
        texts = [element.text, *element.attrib.values()]
        if any(BAD_CHARACTERS.search(text or "") for text in texts):
            problems.append(f"BadCharacters: in {etree.QName(element).localname}")
    return problems


def _rss_problems(rss, hex_lines: list[bool]) -> list[str]:
    channel = rss.find("channel")
    problems = [
        f"MissingElement: channel has no {name}"
        for name in ("title", "link", "description")
        if not (channel.findtext(name) or "").strip()
    ]
    selfs = [link for link in channel.findall(f"{ATOM}link") if link.get("rel") == "self"]
    if not selfs:
        problems.append("MissingAtomSelfLink: channel has no atom:link rel='self'")
    problems += [
        f"MissingAttribute: self link has no type: {s.get('href')}"
        for s in selfs
        if not s.get("type")
    ]
    problems += _absolute("InvalidLink", channel.findtext("link"))
    problems += _rfc822(channel.findtext("lastBuildDate"))
    for name in ("title", "description"):
        problems += _plain_text_problems(channel.find(name), hex_lines)
    guids = [item.findtext("guid") for item in channel.findall("item")]
    problems += [f"DuplicateValue: guid {g}" for g in set(guids) if g and guids.count(g) > 1]
    for item in channel.findall("item"):
        problems += _rss_item_problems(item, hex_lines)
    return problems


def _rss_item_problems(item, hex_lines: list[bool]) -> list[str]:
    problems = []
    title = item.findtext("title")
    if title is None and item.find("description") is None:
        problems.append("ItemMustContainTitleOrDescription")
    plain_texts = [item.find("title"), *item.findall("category")]
    plain_texts += [
        description
        for description in item.iter(MEDIA_DESCRIPTION)
        if description.get("type") != "html"
    ]
    for element in plain_texts:
        problems += _plain_text_problems(element, hex_lines)
    guid = item.find("guid")
    if guid is None:
        problems.append("MissingGuid: item has no guid")
    elif guid.get("isPermaLink", "true") == "true":
        problems += _absolute("InvalidHttpGUID", guid.text)
        if (guid.text or "").lower().startswith(("tag:", "urn:uuid:")):
            problems.append(f"InvalidPermalink: {guid.text}")
    problems += _absolute("InvalidLink", item.findtext("link"))
    problems += _rfc822(item.findtext("pubDate"))
    for author in item.findall("author"):
        if not EMAIL.match(author.text or ""):
            problems.append(f"InvalidContact: author must be an email address: {author.text!r}")
    if item.find("author") is not None and item.find(f"{DC}creator") is not None:
        problems.append("DuplicateItemSemantics: both author and dc:creator")
    if item.find("pubDate") is not None and item.find(f"{DC}date") is not None:
        problems.append("DuplicateItemSemantics: both pubDate and dc:date")
    if item.find(CONTENT_ENCODED) is not None and item.find("description") is None:
        problems.append("NeedDescriptionBeforeContent")
    for field in ("description", CONTENT_ENCODED):
        problems += _html_problems(item.findtext(field))
    modified = item.findtext(DCTERMS_MODIFIED)
    if modified is not None and not RFC3339.match(modified):
        problems.append(f"InvalidW3CDTFDate: dcterms:modified {modified!r}")
    problems += _enclosure_problems(item.findall("enclosure"))
    problems += _media_problems(item.findall(MEDIA_CONTENT))
    return problems


def _atom_problems(feed) -> list[str]:
    problems = _atom_required(feed, "feed")
    links = feed.findall(f"{ATOM}link")
    if not any(link.get("rel") == "self" for link in links):
        problems.append("MissingSelf: feed has no link rel='self'")
    entries = feed.findall(f"{ATOM}entry")
    feed_has_author = feed.find(f"{ATOM}author") is not None
    ids = [entry.findtext(f"{ATOM}id") for entry in entries]
    updated = [entry.findtext(f"{ATOM}updated") for entry in entries]
    problems += [f"DuplicateEntries: id {i}" for i in set(ids) if ids.count(i) > 1]
    problems += [f"DuplicateUpdated: {u}" for u in set(updated) if updated.count(u) > 1]
    for entry in entries:
        problems += _atom_required(entry, "entry")
        if not feed_has_author and entry.find(f"{ATOM}author") is None:
            problems.append("MissingAuthor: entry has no author and the feed has none")
        problems += _rfc3339(entry.findtext(f"{ATOM}published"))
        alternates = [
            link
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        if len(alternates) > 1:
            problems.append("DuplicateAtomLink: more than one alternate link")
        for name in ("content", "summary"):
            element = entry.find(f"{ATOM}{name}")
            if element is not None and element.get("type") == "html":
                problems += _html_problems(element.text)
            if element is not None and not element.text and len(element) == 0:
                problems += [] if element.get("src") else [f"NotBlank: entry {name} is empty"]
        problems += _media_problems(entry.findall(MEDIA_CONTENT))
        for description in entry.iter(MEDIA_DESCRIPTION):
            tags = HTML_END_TAG.findall(description.text or "")
            if description.get("type") != "html" and set(map(str.lower, tags)) & HTML_TAGS:
                problems.append(f"ContainsUndeclaredHTML: {description.text!r}")
    for name in feed.iter(f"{ATOM}name"):
        if not (name.text or "").strip():
            problems.append("NotBlank: author name is empty")
        if ANGLE_EMAIL.search(name.text or ""):
            problems.append(f"ContainsEmail: author name {name.text!r}")
    return problems


def _tombstone_problems(feed) -> list[str]:
    """Check RFC 6721 at:deleted-entry elements.

    The validator knows no RFC 6721 rule: it warns UnknownNamespace once for the
    tombstones namespace, as for any extension it has not heard of, then checks only the
    characters of the element's attributes (BadCharacters, checked above). That one
    warning is expected of a feed announcing a removal; the RFC's own rules are
    checked here: ref is an IRI (the removed entry's id), when an RFC 3339 date-time,
    the element a child of atom:feed, at most one at:by and at:comment, and no entry
    still carrying the removed id.
    """
    problems = []
    entry_ids = {entry.findtext(f"{ATOM}id") for entry in feed.findall(f"{ATOM}entry")}
    for stone in feed.iter(DELETED_ENTRY):
        if stone.getparent() is not feed:
            problems.append("MisplacedTombstone: at:deleted-entry is not a child of atom:feed")
        ref, when = stone.get("ref"), stone.get("when")
        if not ref:
            problems.append("MissingAttribute: at:deleted-entry has no ref")
        elif not urlsplit(ref).scheme:
            problems.append(f"InvalidFullLink: tombstone ref {ref!r} is not an absolute IRI")
        else:
            problems += uri_problems("InvalidFullLink", ref)
        if ref in entry_ids:
            problems.append(f"DuplicateEntries: an entry and a tombstone share the id {ref}")
        problems += _rfc3339(when) if when else ["MissingAttribute: at:deleted-entry has no when"]
        for name in ("by", "comment"):
            if len(stone.findall(f"{TOMBSTONES}{name}")) > 1:
                problems.append(f"DuplicateElement: more than one at:{name} in a tombstone")
    return problems


def _atom_required(element, what: str) -> list[str]:
    problems = [
        f"MissingElement: {what} has no {name}"
        for name in ("id", "title", "updated")
        if not (element.findtext(f"{ATOM}{name}") or "").strip()
    ]
    identifier = element.findtext(f"{ATOM}id") or ""
    if identifier and not urlsplit(identifier).scheme:
        problems.append(f"InvalidFullLink: {what} id {identifier!r} is not an absolute IRI")
    elif identifier:
        problems += uri_problems("InvalidFullLink", identifier)
    return problems + _rfc3339(element.findtext(f"{ATOM}updated"))


def _plain_text_problems(element, hex_lines: list[bool]) -> list[str]:
    """Check RSS plain text as the validator does: no HTML end tags, no bare "<" or entities."""
    if element is None or not element.text:
        return []
    text = element.text
    tags = [tag for tag in HTML_END_TAG.findall(text) if tag.lower() in HTML_TAGS]
    if tags:
        return [f"ContainsHTML: </{tags[0]}> in {text!r}"]
    first = element.sourceline
    if any(hex_lines[first - 1 : first + text.count("\n")]):
        return []  # written with the RSS profile's hexadecimal references
    if HTML_ENTITY.search(text):
        return [
            f"ContainsHTML: &{name}; in {text!r}"
            for name in HTML_ENTITY.findall(text)
            if name in name2codepoint or name == "apos" or not name.isalpha()
        ][:1]
    if CHARACTER_DATA.search(text):
        return [f"CharacterData: encode < and & as &#x3C; and &#x26; in {text!r}"]
    return []


def _absolute(message: str, url: str | None) -> list[str]:
    if url is None:
        return []
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [f"{message}: {url!r} is not an absolute http(s) URL"]
    return uri_problems(message, url.strip())


def uri_problems(message: str, uri: str) -> list[str]:
    """Check a full URI as the validator's RFC 2396 rule does (tag: and urn: by their own)."""
    scheme = uri.split(":")[0].lower()
    if scheme == "tag":
        return [] if TAG_URI.match(uri) else [f"InvalidTAG: {uri!r}"]
    if scheme == "urn":
        if uri.lower().startswith("urn:uuid:") and not UUID_URN.match(uri):
            return [f"InvalidUUID: {uri!r}"]
        return [] if URN.match(uri) else [f"InvalidURN: {uri!r}"]
    if not FULL_URI.match(uri):
        bad = [c for c in uri if ord(c) < 128 and not URI_CHAR.match(c)]
        if bad:
            return [f"InvalidUriChar: {bad[0]!r} in {uri!r}"]
        return [f"{message}: {uri!r} is not a URI (characters outside ASCII)"]
    if scheme in ("http", "ftp") and not re.match(r"^\w+://[^/]", uri):
        return [f"{message}: {uri!r} has no host"]
    if scheme not in IANA_SCHEMES:
        return [f"SchemeNotIANARegistered: {scheme!r} in {uri!r}"]
    return []


def _rfc822(value: str | None) -> list[str]:
    if value is None:
        return []
    if not RFC822.match(value):
        return [f"InvalidRFC2822Date: {value!r}"]
    if value[-4:].isdigit() and value[-2:] not in ("00", "30"):  # the validator's [03]0
        return [f"ProblematicalRFC822Date: offset {value[-5:]} in {value!r}"]
    moment = parsedate_to_datetime(value)
    if moment.strftime("%a") != value[:3]:
        return [f"IncorrectDOW: {value!r}"]
    return _plausible(moment, value)


def _rfc3339(value: str | None) -> list[str]:
    if value is None:
        return []
    if not RFC3339.match(value):
        return [f"InvalidRFC3339Date: {value!r}"]
    return _plausible(datetime.fromisoformat(value.replace("Z", "+00:00")), value)


def _plausible(moment: datetime, value: str) -> list[str]:
    if not datetime(1970, 1, 1, tzinfo=UTC) <= moment <= datetime.now(UTC) + timedelta(days=1):
        return [f"ImplausibleDate: {value!r}"]
    return []


def _html_problems(html: str | None) -> list[str]:
    """Check escaped HTML as the validator does: strict HTML5 parse, safe tags, absolute URLs."""
    if not html:
        return []
    try:
        fragment = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parseFragment(html)
    except html5lib.html5parser.ParseError as error:
        return [f"NotHtml: {error}"]
    problems = []
    for element in fragment.iter():
        if not isinstance(element.tag, str) or element.tag == "DOCUMENT_FRAGMENT":
            continue
        if element.tag not in SAFE_ELEMENTS:
            problems.append(f"SecurityRisk: <{element.tag}>")
        for name, value in element.attrib.items():
            if name == "style" or (name not in SAFE_ATTRIBUTES and not name.startswith("data-")):
                problems.append(f"SecurityRiskAttr: {name} on <{element.tag}>")
            if name in URL_ATTRIBUTES and not urlsplit(value.strip()).scheme:
                problems.append(f"ContainsRelRef: {name}={value!r} on <{element.tag}>")
            if name in URL_ATTRIBUTES and value.strip().lower().startswith("javascript:"):
                problems.append(f"SecurityRisk: javascript URL in {name}")
    return problems


def _enclosure_problems(enclosures) -> list[str]:
    problems = ["DuplicateEnclosure"] if len(enclosures) > 1 else []
    for enclosure in enclosures:
        if not (enclosure.get("length") or "").isdigit():
            problems.append(f"InvalidIntegerAttribute: enclosure length {enclosure.get('length')}")
        if not MIME.match(enclosure.get("type") or ""):
            problems.append(f"InvalidMIMEAttribute: enclosure type {enclosure.get('type')}")
        problems += _absolute("InvalidURLAttribute", enclosure.get("url") or "")
    return problems


def _media_problems(contents) -> list[str]:
    problems = []
    for content in contents:
        problems += _absolute("InvalidFullLink", content.get("url") or "")
        if content.get("medium") not in (None, "image", "audio", "video", "document", "executable"):
            problems.append(f"InvalidMediaMedium: {content.get('medium')}")
        size = content.get("fileSize")
        if size is not None and not (size.isdigit() and int(size) > 0):
            problems.append(f"InvalidPositiveInteger: media:content fileSize {size}")
        if content.get("type") is not None and not MIME.match(content.get("type")):
            problems.append(f"InvalidMIMEAttribute: media:content type {content.get('type')}")
    return problems


def opml_problems(document: bytes) -> list[str]:
    """Return every validator rule the OPML 2.0 document breaks."""
    root = etree.fromstring(document)
    if root.tag != "opml" or root.get("version") not in ("1.0", "1.1", "2.0"):
        return [f"InvalidOPMLVersion: {root.tag} {root.get('version')!r}"]
    head, body = root.find("head"), root.find("body")
    if head is None or body is None or body.find("outline") is None:
        return ["MissingElement: opml needs head, body and an outline"]
    problems = []
    for name in ("title", "ownerName"):
        problems += _html_problems(head.findtext(name))
    for outline in body.iter("outline"):
        problems += _outline_problems(outline)
    return problems


def _outline_problems(outline) -> list[str]:
    attributes = outline.attrib
    problems = [] if "text" in attributes else ["MissingAttribute: outline has no text"]
    kind = attributes.get("type", "").lower()
    if kind == "rss":
        problems += [] if "xmlUrl" in attributes else ["MissingXmlURL"]
        problems += [] if "title" in attributes else ["MissingTitleAttr"]
    typed = {"description", "htmlUrl", "language", "title", "version", "xmlUrl"}
    if "type" not in attributes and len(attributes) > 1 and typed & set(attributes):
        problems.append(f"MissingOutlineType: outline {attributes.get('text')!r}")
    for name in ("text", "title", "description"):
        problems += _html_problems(attributes.get(name))
    for name in ("xmlUrl", "htmlUrl", "url"):
        if name in attributes:
            problems += uri_problems("InvalidFullLink", attributes[name])
    return problems
