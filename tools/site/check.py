"""Checks of the built site: every page loads only the site's own files, and every internal link reaches a
page and anchor (``python -m tools site`` fails otherwise)."""

from __future__ import annotations

import html.parser
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

RESOURCE_ATTRS = {"script": "src", "img": "src", "source": "src", "iframe": "src", "audio": "src",
                  "video": "src", "embed": "src", "object": "data", "link": "href"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


class _Page(html.parser.HTMLParser):
    """Collects a page's ids, its links (<a href>) and the resources it loads."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.resources: list[str] = []
        self._style = False
        self.styles: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key) and (key == "id" or tag == "a"):
                self.ids.add(attrs[key])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in RESOURCE_ATTRS and attrs.get(RESOURCE_ATTRS[tag]):
            self.resources.append(attrs[RESOURCE_ATTRS[tag]])
        if attrs.get("style"):
            self.styles.append(attrs["style"])
        self._style = tag == "style"

    def handle_data(self, data: str) -> None:
        if self._style:
            self.styles.append(data)

    def handle_endtag(self, tag: str) -> None:
        self._style = False


def _external(url: str) -> bool:
    return bool(urlsplit(url).scheme not in ("", "data") or url.startswith("//"))


@dataclass
class SiteCheck:
    pages: int = 0
    external: list[str] = field(default_factory=list)  # "page: url" of resources loaded from elsewhere
    broken: list[str] = field(default_factory=list)  # "page: link" of links to missing pages or anchors

    @property
    def problems(self) -> list[str]:
        return [f"loads from the internet: {e}" for e in self.external] + [f"broken link: {b}" for b in self.broken]


def check_site(out: Path) -> SiteCheck:
    """Every page loads only the site's own files, and every internal link reaches a page and anchor."""
    parsed: dict[Path, _Page] = {}
    for page in sorted(p for p in out.rglob("*.html") if "_static" not in p.relative_to(out).parts):  # themes keep templates there
        parser = _Page()
        parser.feed(page.read_text(encoding="utf-8"))
        parsed[page] = parser
    check = SiteCheck(pages=len(parsed))
    for css in sorted(out.rglob("*.css")):
        for match in CSS_URL.finditer(css.read_text(encoding="utf-8", errors="replace")):
            url = match[1] or match[2]
            if _external(url):
                check.external.append(f"{css.relative_to(out)}: {url}")
    for page, parser in parsed.items():
        name = page.relative_to(out).as_posix()
        check.external += [f"{name}: {url}" for url in parser.resources if _external(url)]
        for style in parser.styles:
            check.external += [f"{name}: {m[1] or m[2]}" for m in CSS_URL.finditer(style) if _external(m[1] or m[2])]
        for link in parser.links + parser.resources:
            parts = urlsplit(link)
            if _external(link) or parts.scheme in ("data", "mailto", "javascript"):
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                check.broken.append(f"{name}: {link}")
            elif parts.fragment and target in parsed and unquote(parts.fragment) not in parsed[target].ids:
                check.broken.append(f"{name}: {link} (no such anchor)")
    return check
