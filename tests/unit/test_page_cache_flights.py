"""Concurrent misses on one cached page render it once."""

import threading
import time

from events.catalog.cache import PageCache


def test_concurrent_misses_on_one_key_render_once():
    cache = PageCache()
    renders = []
    start = threading.Barrier(8)

    def render():
        renders.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive while it renders
        return b"page"

    results = []

    def visitor():
        start.wait()
        results.append(cache.get_or_render(("k",), render))

    threads = [threading.Thread(target=visitor) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [b"page"] * 8
    assert len(renders) == 1
    assert cache.get(("k",)) == b"page" and not cache._flights


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
        return b"x"

    threads = [threading.Thread(target=cache.get_or_render, args=((n,), render)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get((0,)) == cache.get((1,)) == b"x"
