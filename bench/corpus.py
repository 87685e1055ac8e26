"""Write a seeded, realistic content folder that feedsvc can serve directly, for benchmarks.

    python bench/corpus.py OUT_DIR --articles 10000 --sections 8 --seed 1 [--until 2026-11-01]

writes OUT_DIR/<section>/_index.md, OUT_DIR/<section>/<slug>.md and a few tiny PNGs in
OUT_DIR/media/; serve it with FEEDSVC_CONTENT_DIR=OUT_DIR. Same arguments, byte-identical files:
every choice comes from random.Random(seed), every date from the `until` anchor, never the clock.
Drafts (~1%) and scheduled articles (~1%, dated 30–365 days after the anchor) are meant to be
left out of feeds, not reported as problems. OUT_DIR must be empty or hold an earlier corpus,
which --force replaces: only the files listed in its marker file are removed.
Importable: `generate(out_dir, articles, sections, seed)` returns a Summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import re
import struct
import sys
import time
import unicodedata
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

log = logging.getLogger(__name__)

MARKER = ".feedsvc-corpus"
UNTIL = date(2026, 11, 1)  # default anchor: no date depends on the clock
SECTIONS = "news culture science sport business opinion travel food technology health".split()
NOUNS = (
    "council harbour bridge library festival market tide museum budget orchestra ferry archive "
    "garden tram vineyard bakery stadium river election theatre laboratory glacier station "
    "workshop gallery school hospital quarry lighthouse recipe season forecast strike census "
    "telescope choir café fjord plaza mountain pier kitchen border referendum"
).split()
ADJECTIVES = (
    "quiet forgotten new old small rising secret crowded late early bright coastal northern "
    "unlikely stubborn hidden fragile generous ambitious restless familiar long-awaited"
).split()
VERBS = (
    "returns reopens divides surprises rebuilds rethinks confronts remembers celebrates loses "
    "doubles delays rescues reinvents measures questions outgrows welcomes"
).split()
PLACES = (
    "Northbridge Zürich Tromsø Logroño Québec Düsseldorf Malmö Nîmes Ålesund Cádiz Porto "
    "Kraków Göttingen Mérida Bergen Lyon"
).split()
NAMES = (
    "Zoë Achterberg|José Peña|Søren Lindqvist|Renée Dubois|Jürgen Müller|Inês Carvalho|"
    "Tomasz Reilly|Amélie Fontaine|Björn Østergaard|Nuñez Castillo|Maëlle Kerbrat|Chidi Okafor|"
    "Hana Kobayashi|Priya Raman|Fionnuala Byrne|Ødegaard Hansen"
).split("|")
TAGS = (
    "local|climate|transport|music|food|politics|housing|education|football|science|São Paulo|"
    "art & design|health|travel|economy|history|weather|books|opinion|tech"
).split("|")
PREPOSITIONS = "in|near|after|without|for|beyond|across|outside".split("|")
CONNECTIVES = "while|because|although|even as|just as|long after|and so|but".split("|")
OWNERS = "its|the town’s|everyone’s|nobody’s|their".split("|")
CODE = "git log --oneline|SELECT 1;|pip install feedsvc|rm -rf build/|#include <stdio.h>"
OFFSET_MINUTES = (0, 60, 120, -300, -480, 330, 345, 540, -210, 780)
CREDITS = ("Reuters", "AP", "Getty Images", "Staff")


@dataclass(frozen=True)
class Summary:
    """What one run wrote."""

    out_dir: Path
    articles: int
    drafts: int
    scheduled: int
    sections: int
    media: int
    bytes: int

    def __str__(self) -> str:
        """Return the one-line report the command prints."""
        return (
            f"{self.articles} articles ({self.drafts} drafts, {self.scheduled} scheduled) in "
            f"{self.sections} sections + {self.media} images, {self.bytes / 1e6:.1f} MB "
            f"in {self.out_dir}"
        )


class CorpusError(Exception):
    """The output folder cannot be used."""


def slugify(title: str) -> str:
    """Return an ASCII [a-z0-9-] slug for a title, cut at a word near 60 characters."""
    text = title.replace("ø", "o").replace("Ø", "O")  # NFKD leaves ø whole
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    slug = ""
    for word in re.sub(r"[^a-z0-9]+", " ", text).split():
        if len(slug) + len(word) > 60:
            break
        slug = f"{slug}-{word}" if slug else word
    return slug or "article"


def unique_slug(slug: str, taken: set[str]) -> str:
    """Return slug, or slug-2, slug-3, … if it is already taken; remember the result."""
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        candidate = f"{slug}-{n}"
    taken.add(candidate)
    return candidate


def yaml_text(value: str) -> str:
    """Write a string as YAML: plain when that is unambiguous, else double-quoted."""
    plain = re.fullmatch(r"[A-Za-zÀ-ž“‘][^:#\[\]{}\"'`|>&*!%@,]*", value)
    return value if plain and not value.endswith(" ") else json.dumps(value, ensure_ascii=False)


class ArticleMaker:
    """Seeded source of titles, bodies and front matter; links only to articles made earlier."""

    def __init__(self, rng: random.Random, anchor: datetime, media: list[str]) -> None:
        self.rng, self.anchor, self.media = rng, anchor, media
        self.published: list[tuple[str, str]] = []  # (path such as "news/slug/", title)

    def pick(self, *pools: list[str]) -> str:
        """Return one word from each pool, joined by spaces."""
        return " ".join(self.rng.choice(pool) for pool in pools)

    def title(self) -> str:
        """Return a headline in one of several newsroom patterns."""
        r, n, a, v, p = self.rng, *(self.pick(xs) for xs in (NOUNS, ADJECTIVES, VERBS, PLACES))
        patterns = (
            f"The {a} {n} that {v} {p}",
            f"{p}’s {n} {v} — and what comes next",
            f"“{a.capitalize()} and {self.pick(ADJECTIVES)}”: {self.pick(NAMES)} on the {n}",
            f"Why the {n} of {p} still matters",
            f"{r.randint(3, 12)} things we learned at the {p} {n}…",
            f"{a.capitalize()} {n}, {self.pick(ADJECTIVES, NOUNS)}: a {p} diary",
            f"R&D at the {n}: {p} {v} its {r.randint(1990, 2020)}–{r.randint(2021, 2026)} plan",
        )
        return r.choice(patterns)

    def sentence(self, plain: bool = False) -> str:
        """Return one sentence, now and then with emphasis, a quote, a dash, code or a link."""
        r = self.rng
        text = f"the {self.pick(ADJECTIVES, NOUNS, VERBS)} the {self.pick(NOUNS)}"
        text += f" {self.pick(PREPOSITIONS, PLACES)}"
        if r.random() < 0.6:
            text += f", {self.pick(CONNECTIVES)} the {self.pick(NOUNS, VERBS, OWNERS, NOUNS)}"
        roll = 1.0 if plain else r.random()
        if roll < 0.05:
            text += f" and a *{self.pick(ADJECTIVES)}* {self.pick(NOUNS)}"
        elif roll < 0.08:
            text = f"“{text},” said {self.pick(NAMES)}"
        elif roll < 0.10:
            text += f" — or so **{self.pick(PLACES)}’s** {self.pick(NOUNS)} says"
        elif roll < 0.11:
            text += f": `{r.choice(CODE.split('|'))}`"
        elif roll < 0.13:
            text += f", says a [report](https://example.org/reports/{r.randint(1, 999)})"
        elif roll < 0.14 and self.published:
            path, title = r.choice(self.published)  # relative to /<section>/<slug>/, or not
            text += f" (see [{title}]({r.choice(('/', '../../'))}{path}))"
        elif roll < 0.16:
            text += f" – from {r.randint(1990, 2010)}–{r.randint(2011, 2026)} … and beyond"
        return text[0].upper() + text[1:] + r.choice(".....?!")

    def block(self) -> str:
        """Return one Markdown block: mostly a paragraph, else a heading, list, quote or image."""
        r, roll = self.rng, self.rng.random()
        if roll < 0.10:
            return "## " + self.title()
        if roll < 0.17:
            marker = r.choice(("-", "*", "1."))
            return "\n".join(f"{marker} {self.sentence()}" for _ in range(r.randint(2, 5)))
        if roll < 0.22:
            return "> " + self.sentence()
        if roll < 0.24:
            return f"![The {self.pick(NOUNS)} in {self.pick(PLACES)}]({r.choice(self.media)})"
        return " ".join(self.sentence() for _ in range(r.randint(2, 6)))

    def body(self) -> str:
        """Return a Markdown body of 150–3000 words, log-normally distributed around 550."""
        target = min(3000, max(150, round(self.rng.lognormvariate(math.log(550), 0.7))))
        blocks, words = [" ".join(self.sentence() for _ in range(3))], 0
        while words < target:
            blocks.append(self.block())
            words += len(blocks[-1].split())
        return "\n\n".join(blocks) + "\n"

    def date(self, moment: datetime) -> str:
        """Write an instant the way some author would: various offsets, sometimes naive."""
        r, roll = self.rng, self.rng.random()
        if roll < 0.12:  # naive: read in the site's time zone (UTC)
            return moment.strftime("%Y-%m-%dT%H:%M:%S")
        if roll < 0.15:
            return json.dumps(f"{moment:%B} {moment.day}, {moment:%Y %H:%M}")
        if roll < 0.20:
            return moment.strftime("%Y-%m-%d")
        if roll < 0.30:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        local = moment.astimezone(timezone(timedelta(minutes=r.choice(OFFSET_MINUTES))))
        if roll < 0.40:
            return json.dumps(local.strftime("%a, %d %b %Y %H:%M:%S %z"))
        return local.isoformat(sep=r.choice("T "))

    def front_matter(self, title: str, when: datetime, section: str, slug: str) -> list[str]:
        """Return the front-matter lines of one article, exercising every field of the spec."""
        r = self.rng
        lines = [f"title: {yaml_text(title)}", f"date: {self.date(when)}"]
        if r.random() < 0.20 and when < self.anchor:
            later = min(self.anchor, when + timedelta(minutes=r.randint(60, 43200)))
            lines.append(f"updated: {self.date(later)}")
        if (roll := r.random()) < 0.70:
            lines.append(f"author: {yaml_text(self.pick(NAMES))}")
        elif roll < 0.90:  # the rest fall back to the site author
            lines += ["author:"] + [f"  - {yaml_text(name)}" for name in r.sample(NAMES, 2)]
        if r.random() < 0.70:
            dek = " ".join(self.sentence(plain=True) for _ in range(r.randint(1, 2)))
            folded = r.random() < 0.2
            lines += ["summary: >-", f"  {dek}"] if folded else [f"summary: {yaml_text(dek)}"]
        if r.random() < 0.40:
            lines += self.image(slug)
        lines += self.tags(r.sample(TAGS, r.randint(0, 5)))
        if r.random() < 0.20 and self.published:
            lines.append("related:")
            for path, text in r.sample(self.published, min(len(self.published), r.randint(1, 3))):
                lines += [f"  - title: {yaml_text(text)}", f"    url: /{path}"]
        if r.random() < 0.05:
            uid = f"urn:uuid:{uuid.UUID(int=r.getrandbits(128), version=4)}"
            lines.append("id: " + r.choice((uid, f"tag:example.org,{when:%Y}:/{section}/{slug}")))
        if r.random() < 0.03:
            lines.append(f"kicker: {yaml_text(self.pick(PLACES))}")  # unknown fields are ignored
        return lines

    def image(self, slug: str) -> list[str]:
        """Return an image mapping: mostly a /media/ file, sometimes an absolute URL."""
        r, absolute = self.rng, f"https://images.example.com/{slug}.jpg"
        alt = yaml_text(f"The {self.pick(ADJECTIVES, NOUNS)} in {self.pick(PLACES)}")
        credit = yaml_text(f"{self.pick(NAMES)}/{r.choice(CREDITS)}")
        src = r.choice(self.media) if r.random() < 0.75 else absolute
        return ["image:", f"  src: {src}", f"  alt: {alt}", f"  credit: {credit}"]

    def tags(self, tags: list[str]) -> list[str]:
        """Return tags as a flow list or a block list, as authors write both."""
        if tags and self.rng.random() < 0.5:
            return ["tags: [" + ", ".join(json.dumps(t, ensure_ascii=False) for t in tags) + "]"]
        return ["tags:"] + [f"  - {yaml_text(tag)}" for tag in tags] if tags else []


def make_png(rng: random.Random, width: int, height: int) -> bytes:
    """Return a small valid RGB PNG: a seeded two-colour gradient."""
    ends = [(rng.randrange(256), rng.randrange(256)) for _ in range(3)]
    row = bytes(round(a + (b - a) * x / width) for x in range(width) for a, b in ends)
    chunks = ((b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)), (b"IEND", b""))
    chunks = (chunks[0], (b"IDAT", zlib.compress((b"\0" + row) * height, 9)), chunks[1])
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        for kind, data in chunks
    )


class Writer:
    """Write files under a root, listing each in the marker so --force can remove it later."""

    def __init__(self, root: Path, marker) -> None:
        self.root, self.marker, self.bytes = root, marker, 0

    def write(self, relative: str, data: bytes | str) -> None:
        """Write one file and record it."""
        data = data.encode("utf-8") if isinstance(data, str) else data
        (self.root / relative).parent.mkdir(parents=True, exist_ok=True)
        (self.root / relative).write_bytes(data)
        self.marker.write(relative + "\n")
        self.bytes += len(data)


def clear_out_dir(out_dir: Path, force: bool) -> None:
    """Create out_dir, or remove an earlier corpus from it; never touch files it did not list."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not any(out_dir.iterdir()):
        return
    marker = out_dir / MARKER
    if not force:
        raise CorpusError(f"{out_dir} is not empty; pass --force to replace an earlier corpus")
    if not marker.is_file():
        raise CorpusError(f"{out_dir} is not empty and has no {MARKER} file; refusing to touch it")
    listed = [Path(line) for line in marker.read_text(encoding="utf-8").splitlines()[1:]]
    listed = [p for p in listed if p.parts and not p.is_absolute() and ".." not in p.parts]
    for path in listed:
        (out_dir / path).unlink(missing_ok=True)
    for folder in sorted({p.parent for p in listed if p.parent.parts}, key=lambda p: -len(p.parts)):
        if (out_dir / folder).is_dir() and not any((out_dir / folder).iterdir()):
            (out_dir / folder).rmdir()
    marker.unlink()


def write_site_files(rng: random.Random, writer: Writer, sections: int) -> tuple[list, list]:
    """Write the media files and section indexes; return (section slugs, media site paths)."""
    slugs = SECTIONS[:sections] + [f"section-{n}" for n in range(len(SECTIONS) + 1, sections + 1)]
    media = [f"/media/lead-{n}.png" for n in range(1, 7)]
    for path in media:
        width = rng.choice((32, 64, 96, 160))
        writer.write(path.lstrip("/"), make_png(rng, width, width * 9 // 16))
    for slug in slugs:
        title = slug.replace("-", " ").title()
        about = f"{title} from {rng.choice(PLACES)} and beyond — {rng.choice(ADJECTIVES)} stories."
        writer.write(f"{slug}/_index.md", f"---\ntitle: {title}\ndescription: {about}\n---\n")
    return slugs, media


def pick_moment(rng: random.Random, anchor: datetime) -> tuple[datetime, bool]:
    """Return (instant, scheduled): within four years before the anchor, or ~1% after it."""
    if rng.random() < 0.01:
        return anchor + timedelta(seconds=rng.randint(30 * 86400, 365 * 86400)), True
    return anchor - timedelta(seconds=rng.randint(43200, 4 * 365 * 86400)), False


def generate(
    out_dir: Path, articles: int, sections: int, seed: int, until: date = UNTIL, force: bool = False
) -> Summary:
    """Write a corpus into out_dir; the same arguments always give the same bytes."""
    if articles < 0 or sections < 1:
        raise ValueError("need at least one section and a non-negative number of articles")
    out_dir, rng, drafts, scheduled = Path(out_dir), random.Random(seed), 0, 0
    clear_out_dir(out_dir, force)
    with (out_dir / MARKER).open("w", encoding="utf-8", newline="\n") as marker:
        marker.write("# written by bench/corpus.py; --force removes the files listed here\n")
        writer = Writer(out_dir, marker)
        slugs, media = write_site_files(rng, writer, sections)
        maker = ArticleMaker(rng, datetime(until.year, until.month, until.day, tzinfo=UTC), media)
        taken: dict[str, set[str]] = {slug: set() for slug in slugs}
        weights = [1 / math.sqrt(n + 1) for n in range(len(slugs))]  # news busier than food
        for _ in range(articles):
            section, title = rng.choices(slugs, weights)[0], maker.title()
            slug = unique_slug(slugify(title), taken[section])
            when, future = pick_moment(rng, maker.anchor)
            lines = maker.front_matter(title, when, section, slug)
            draft = rng.random() < 0.01
            head = "---\n" + "\n".join(lines + ["draft: true"] * draft) + "\n---\n\n"
            writer.write(f"{section}/{slug}.md", head + maker.body())
            drafts, scheduled = drafts + draft, scheduled + (future and not draft)
            if not (draft or future):
                maker.published.append((f"{section}/{slug}/", title))
    return Summary(out_dir, articles, drafts, scheduled, len(slugs), len(media), writer.bytes)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, write the corpus and log a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--sections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--until", type=date.fromisoformat, default=UNTIL, help="anchor date")
    parser.add_argument("--force", action="store_true", help="replace an earlier corpus")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    started = time.perf_counter()
    try:
        s = generate(args.out_dir, args.articles, args.sections, args.seed, args.until, args.force)
    except CorpusError as exc:
        log.error("corpus: %s", exc)
        return 1
    seconds = time.perf_counter() - started
    log.info(f"corpus: {s} in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
