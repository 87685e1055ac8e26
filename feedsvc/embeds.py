"""Embedded media made into markup every feed reader can show, and what cannot be, named.

Feed readers run no scripts and show no frames, and a sanitiser drops what it does not
know, so a YouTube player or a lazy image copied from a CMS would leave an empty
paragraph. Before sanitising, each embed becomes its closest safe form: a frame from a
known host a link (with its thumbnail where the host publishes one) to the page it
embeds, a lazy image a real `src`, a social post its quoted text and link. What still has
to go is listed by `lost_in_feeds`, for `check`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser
from urllib.parse import parse_qs, unquote, urlsplit

# Quick tests: a body without any of these needs no rewriting, or loses nothing (most
# bodies). Substring scans are several times faster than one case-blind regex.
_UPPER_CASE_MARKUP = re.compile(r"<[A-Z]")
# A quote written in Markdown has no attributes; an embed code's quote has a class.
_REWRITTEN = ("<iframe", "<video", "<audio", "<blockquote ", "data-")
_LOST = (
    "<iframe",
    "<video",
    "<audio",
    "<script",
    "<object",
    "<embed",
    "<applet",
    "<svg",
    "<canvas",
)
# One search for them all: nine substring scans would each stop at every "<" of a body,
# ten times slower. (Not for _REWRITTEN: "data-" has no "<" to key on, scans win there.)
_LOST_ANY = re.compile("|".join(map(re.escape, _LOST)))
# Social-post blockquotes as the platforms' embed codes write them.
_SOCIAL_CLASSES = {
    "twitter-tweet": "X (Twitter)",
    "twitter-video": "X (Twitter)",
    "instagram-media": "Instagram",
    "tiktok-embed": "TikTok",
    "bluesky-embed": "Bluesky",
    "text-post-media": "Threads",
    "reddit-embed-bq": "Reddit",
    "mastodon-embed": "Mastodon",
}
# Loader scripts of those embed codes: the blockquote carries the content without them.
_WIDGET_SCRIPT_HOSTS = (
    "platform.twitter.com",
    "platform.x.com",
    "instagram.com",
    "tiktok.com",
    "embed.bsky.app",
    "threads.net",
    "embed.reddit.com",
    "connect.facebook.net",
)
# Placeholders lazy-loading scripts put in `src` until the real image is in view.
_PLACEHOLDER_SRC = re.compile(
    r"^(?:data:|about:blank$|$)|(?:blank|spacer|placeholder|lazy)\.", re.IGNORECASE
)
_PLUGIN = "plug-in content cannot be shown by feed readers; removed from feeds"
_VOID = frozenset({"img", "source", "track", "br", "hr", "wbr", "input", "embed", "col", "area"})


@dataclass(frozen=True)
class Loss:
    """Something a page shows that feeds cannot carry: what it is, why, and text to find it by."""

    what: str
    why: str
    needle: str


@dataclass(frozen=True)
class EmbedLink:
    """Where an embedded frame's content lives, and a picture of it where one is known."""

    url: str
    label: str
    thumbnail: str = ""


def embedded_page(src: str) -> EmbedLink | None:
    """Return the page a frame from a known video or social host embeds, or None."""
    parts = urlsplit(src if "://" in src else "https:" + src if src.startswith("//") else src)
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)
    if host in ("youtube.com", "youtube-nocookie.com") and len(segments) >= 2:
        if segments[0] in ("embed", "v", "shorts") and segments[1] != "videoseries":
            video = segments[1]
            return EmbedLink(
                f"https://www.youtube.com/watch?v={video}",
                "Video on YouTube",
                f"https://i.ytimg.com/vi/{video}/hqdefault.jpg",
            )
        if "list" in query:
            return EmbedLink(
                f"https://www.youtube.com/playlist?list={query['list'][0]}", "Playlist on YouTube"
            )
    if host == "player.vimeo.com" and segments[:1] == ["video"] and len(segments) > 1:
        return EmbedLink(f"https://vimeo.com/{segments[1]}", "Video on Vimeo")
    if host in ("dailymotion.com", "geo.dailymotion.com"):
        video = segments[-1] if segments[:2] == ["embed", "video"] else query.get("video", [""])[0]
        if video:
            return EmbedLink(
                f"https://www.dailymotion.com/video/{video}",
                "Video on Dailymotion",
                f"https://www.dailymotion.com/thumbnail/video/{video}",
            )
    if host == "open.spotify.com" and segments[:1] == ["embed"] and len(segments) >= 3:
        return EmbedLink(f"https://open.spotify.com/{'/'.join(segments[1:3])}", "On Spotify")
    if host == "w.soundcloud.com" and "url" in query:
        return EmbedLink(query["url"][0], "On SoundCloud")
    if host == "instagram.com" and len(segments) >= 2 and segments[0] in ("p", "reel", "tv"):
        post = f"https://www.instagram.com/{segments[0]}/{segments[1]}/"
        return EmbedLink(post, "Post on Instagram")
    if host == "tiktok.com" and segments[:1] == ["embed"] and segments[-1].isdigit():
        return EmbedLink(f"https://www.tiktok.com/embed/v2/{segments[-1]}", "Video on TikTok")
    if host == "platform.twitter.com" and "id" in query:
        return EmbedLink(f"https://x.com/i/status/{query['id'][0]}", "Post on X (Twitter)")
    if host == "facebook.com" and segments[:1] == ["plugins"] and "href" in query:
        return EmbedLink(query["href"][0], "On Facebook")
    if host == "google.com" and segments[:1] == ["maps"]:
        return EmbedLink(src, "Map")
    return None


def degrade_embeds(html: str) -> str:
    """Rewrite embeds into markup a sanitiser keeps: links, real `src`, quoted posts."""
    lowered = _lowered(html)
    if not any(needle in lowered for needle in _REWRITTEN):
        return html
    return _run(html).output()


def lost_in_feeds(html: str) -> list[Loss]:
    """List what the body shows on its page but feeds cannot carry, with why."""
    if _LOST_ANY.search(_lowered(html)) is None:
        return []
    return _run(html).losses


def _lowered(html: str) -> str:
    """Return html as the quick tests read it: lowered if it has markup in capitals (rare)."""
    return html.lower() if _UPPER_CASE_MARKUP.search(html) else html


def _run(html: str) -> _EmbedRewriter:
    rewriter = _EmbedRewriter()
    rewriter.feed(html)
    rewriter.close()
    return rewriter


def _tag(name: str, attrs: dict[str, str | None]) -> str:
    written = "".join(
        f" {key}" if value is None else f' {key}="{escape(value)}"' for key, value in attrs.items()
    )
    return f"<{name}{written}>"


class _EmbedRewriter(HTMLParser):
    """Copy HTML through, replacing embeds by their feed-safe forms and noting losses."""

    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.parts: list[str] = []
        self.losses: list[Loss] = []
        self._skip_until: str | None = None  # an element whose content is replaced
        self._skip_depth = 0
        # Open <video>/<audio>: (tag, src, where its start tag is in `parts`, that tag as written).
        self._media: list[tuple[str, str, int, str]] = []
        self._social: list[tuple[str, str, bool]] = []  # open post quotes: (url, platform, linked)

    def output(self) -> str:
        return "".join(self.parts)

    # Copy-through of everything this class does not rewrite.
    def handle_data(self, data):
        if self._skip_until is None:
            self.parts.append(data)

    def handle_entityref(self, name):
        self.handle_data(f"&{name};")

    def handle_charref(self, name):
        self.handle_data(f"&#{name};")

    def handle_comment(self, data):
        pass  # comments never reach a reader

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_starttag(self, tag, attrs):
        if self._skip_until is not None:
            self._skip_depth += tag == self._skip_until
            return
        values = {key: value for key, value in attrs}
        handler = getattr(self, f"_start_{tag}", None)
        if handler is not None:
            handler(values)
        else:
            self.parts.append(self.get_starttag_text() or _tag(tag, values))

    def handle_endtag(self, tag):
        if self._skip_until is not None:
            if tag == self._skip_until:
                if self._skip_depth:
                    self._skip_depth -= 1
                else:
                    self._skip_until = None
            return
        if tag in ("video", "audio") and self._media and self._media[-1][0] == tag:
            kind, src, start, written = self._media.pop()
            if not src:  # nothing to play: an empty player would show in readers
                del self.parts[start:]
                self._lose(kind, "a player with no src (or <source>) to play; removed", written)
                return
            label = "Watch the video" if kind == "video" else "Listen"
            # Readers that play nothing show the fallback content: a link.
            self.parts.append(f'<a href="{escape(src)}">{label}</a>')
        if tag == "blockquote" and self._social:
            url, platform, linked = self._social.pop()
            if url and not linked:
                self.parts.append(f'<p><a href="{escape(url)}">View the post on {platform}</a></p>')
        if tag == "a" and self._social:
            self._social[-1] = (*self._social[-1][:2], True)
        self.parts.append(f"</{tag}>")

    def _skip(self, tag: str) -> None:
        self._skip_until, self._skip_depth = tag, 0

    def _lose(self, what: str, why: str, needle: str) -> None:
        # Found again in the file by the URL, else by the start tag as written.
        needle = needle or self.get_starttag_text() or f"<{what}"
        self.losses.append(Loss(what, why, needle))

    # Rewritten elements.
    def _start_iframe(self, attrs):
        self._skip("iframe")
        src = (attrs.get("src") or attrs.get("data-src") or "").strip()
        title = " ".join((attrs.get("title") or "").split())
        if not src.startswith(("http://", "https://", "//")):
            why = "a frame with no web address to link to; feeds show no frames"
            self._lose("iframe", why, src)
            return
        link = embedded_page(src) or EmbedLink(src, "Embedded content")
        text = escape(f"{link.label}: {title}" if title else link.label)
        picture = ""
        if link.thumbnail:
            alt = escape(title or link.label)
            picture = f'<img src="{escape(link.thumbnail)}" alt="{alt}"><br>'
        self.parts.append(f'<p><a href="{escape(link.url)}">{picture}{text}</a></p>')

    def _start_video(self, attrs):
        self._start_media("video", attrs)

    def _start_audio(self, attrs):
        self._start_media("audio", attrs)

    def _start_media(self, tag: str, attrs):
        src = attrs.get("src") or attrs.get("data-src") or ""
        kept = {"src": src} if src else {}
        poster = attrs.get("poster") or attrs.get("data-poster")
        if poster:
            kept["poster"] = poster
        kept |= {k: v for k, v in attrs.items() if k in ("controls", "width", "height", "preload")}
        kept.setdefault("controls", None)
        self._media.append((tag, src, len(self.parts), self.get_starttag_text() or ""))
        self.parts.append(_tag(tag, kept))

    def _start_source(self, attrs):
        src = attrs.get("src") or attrs.get("data-src") or ""
        if self._media and src and not self._media[-1][1]:  # the fallback link's target
            self._media[-1] = (self._media[-1][0], src, *self._media[-1][2:])
        kept = {"src": src} if src else {}
        srcset = attrs.get("srcset") or attrs.get("data-srcset")
        if srcset:
            kept["srcset"] = srcset
        kept |= {k: v for k, v in attrs.items() if k in ("type", "media", "sizes")}
        self.parts.append(_tag("source", kept))

    def _start_img(self, attrs):
        src = attrs.get("src") or ""
        lazy = attrs.get("data-src") or attrs.get("data-lazy-src") or attrs.get("data-original")
        if lazy and _PLACEHOLDER_SRC.search(src.strip()):
            attrs["src"] = lazy
        srcset = attrs.get("data-srcset") or attrs.get("data-lazy-srcset")
        if srcset and not attrs.get("srcset"):
            attrs["srcset"] = srcset
        kept = {k: v for k, v in attrs.items() if not k.startswith("data-") and k != "loading"}
        self.parts.append(_tag("img", kept))

    def _start_blockquote(self, attrs):
        classes = (attrs.get("class") or "").split()
        platform = next((_SOCIAL_CLASSES[c] for c in classes if c in _SOCIAL_CLASSES), None)
        if platform is None:
            self.parts.append(self.get_starttag_text() or _tag("blockquote", attrs))
            return
        url = attrs.get("cite") or attrs.get("data-instgrm-permalink") or ""
        if attrs.get("data-video-id") and not url:
            url = f"https://www.tiktok.com/embed/v2/{attrs['data-video-id']}"
        self.parts.append(_tag("blockquote", {"cite": url} if url else {}))
        self._social.append((url, platform, False))

    def _start_script(self, attrs):
        self._skip("script")
        src = attrs.get("src") or ""
        host = urlsplit(src if "://" in src else "https:" + src).hostname or ""
        if src and host.endswith(_WIDGET_SCRIPT_HOSTS):
            return  # an embed code's loader: its blockquote carries the post
        self._lose("script", "scripts do not run in feed readers; removed from feeds", src)

    def _start_object(self, attrs):
        self._lost_element("object", attrs.get("data") or "", _PLUGIN)

    def _start_embed(self, attrs):
        self._lose("embed", _PLUGIN, attrs.get("src") or "")

    def _start_applet(self, attrs):
        self._lost_element("applet", attrs.get("code") or "", _PLUGIN)

    def _start_svg(self, attrs):
        why = "inline SVG is removed from feeds; save it as an .svg file and show it with <img>"
        self._lost_element("svg", "", why)

    def _start_canvas(self, attrs):
        why = "a canvas is drawn by scripts, which feed readers do not run"
        self._lost_element("canvas", "", why)

    def _lost_element(self, tag: str, needle: str, why: str) -> None:
        self._skip(tag)
        self._lose(tag, why, needle)
