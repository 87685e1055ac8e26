"""What /healthz says: ok, degraded (serving, with problems) or failing (503).

A load balancer acts on the HTTP status alone, so "failing" is kept for a process that
has nothing to serve or whose publishing has stopped; problems with single files only
degrade it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Site

OK = "ok"
DEGRADED = "degraded"
FAILING = "failing"
HTTP_STATUS = {OK: 200, DEGRADED: 200, FAILING: 503}


@dataclass(frozen=True)
class Health:
    """A state and the reasons for it, in words an admin can act on."""

    status: str
    reasons: tuple[str, ...] = ()

    @property
    def http_status(self) -> int:
        """Return the HTTP status /healthz answers with."""
        return HTTP_STATUS[self.status]


def assess(site: Site, published: int, publisher_trouble: str | None) -> Health:
    """Judge a site snapshot and its publisher."""
    failing = []
    if publisher_trouble:
        failing.append(publisher_trouble)
    if not site.articles and site.problems:
        failing.append("no content could be read")
    if failing:
        return Health(FAILING, tuple(failing))
    degraded = []
    if site.problems:
        count = len(site.problems)
        degraded.append(f"{count} content problem{'s' * (count != 1)}; those files are left out")
    if not published:
        degraded.append("no published articles")
    return Health(DEGRADED if degraded else OK, tuple(degraded))
