"""The production app with bounded caches a few hundred kilobytes large: a test's crawl fills them.

`granian ... tests.small_caches_wsgi:app`: a small site then overflows every cache (rendered
feeds, pages, item HTML and items), so crawling it again and again drops and renders anew,
as crawling a 100,000-article archive does with the real budgets.
"""

import functools

from feedsvc import editions, heap, itemhtml, snapshot

BUDGET = 200_000

editions.RENDER_CACHE_BYTES = BUDGET
editions.ItemHtmlMemo = functools.partial(
    itemhtml.ItemHtmlMemo, budget=BUDGET // 2, items_budget=BUDGET
)
snapshot.PageCache.__init__.__defaults__ = (BUDGET,)
heap.Reclaimer.__init__.__defaults__ = (BUDGET,)

from wsgi import app  # noqa: E402 (the budgets first)

__all__ = ["app"]
