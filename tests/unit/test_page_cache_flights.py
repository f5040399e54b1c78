"""The page cache: concurrent misses on one page render it once; memory stays bounded."""

import threading

from events.catalog.cache import PageCache
from tests.helpers import wait_until

PAGE = (b"<html>page</html>", "text/html", {})


def test_concurrent_misses_on_one_key_render_once():
    cache = PageCache()
    renders = []
    start = threading.Barrier(8)

    def render():
        renders.append(1)
        # Every visitor has missed (and waits for this render), or finds the page rendered.
        wait_until(lambda: cache.misses == 8, timeout=5, what="every visitor to miss", every=0.001)
        return PAGE

    results = []

    def visitor():
        start.wait()
        results.append(cache.get_or_render(("k",), render))

    threads = [threading.Thread(target=visitor) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [PAGE] * 8
    assert len(renders) == 1
    assert cache.get(("k",)) == PAGE and not cache._flights


def test_an_uncacheable_render_is_not_stored_and_others_render_their_own():
    cache = PageCache()
    renders = []

    def render():
        renders.append(1)
        return None  # say, a 404

    assert cache.get_or_render(("missing",), render) is None
    assert cache.get_or_render(("missing",), render) is None
    assert len(renders) == 2 and cache.get(("missing",)) is None


def test_different_keys_render_side_by_side():
    cache = PageCache()
    inside = threading.Barrier(2, timeout=5)

    def render():
        inside.wait()  # both renders must be running at once, or this times out
        return PAGE

    threads = [threading.Thread(target=cache.get_or_render, args=((n,), render)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get((0,)) == cache.get((1,)) == PAGE


def test_the_cache_is_bounded_in_bytes_evicting_the_least_recently_used():
    cache = PageCache(max_entries=100, max_bytes=1000)
    for n in range(3):
        cache.put((n,), (b"x" * 400, "text/html", {}))
    assert cache.get((0,)) is None  # 1,200 bytes would not fit: the oldest went
    assert cache.get((1,)) and cache.get((2,)) and cache.bytes == 800
    cache.get((1,))  # used: now the newest
    cache.put((3,), ("200 OK", (), b"y" * 400))  # a replayed response counts its body too
    assert cache.get((2,)) is None and cache.get((1,)) and cache.bytes == 800
    cache.put((1,), (b"z" * 100, "text/html", {}))  # replaced: its old size no longer counts
    assert cache.bytes == 500
    cache.clear()
    assert cache.bytes == 0 and cache.get((3,)) is None
