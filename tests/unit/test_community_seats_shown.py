"""What the offering page's form says about community seats (pricing.community_seats_shown),
worked out by the page builder, not the template: each branch, from plain objects."""

from __future__ import annotations

from types import SimpleNamespace

from events.pricing import CommunityShown, community_seats_shown


def offering(per_session: bool, community_seats: int = 2, free: bool = False):
    return SimpleNamespace(
        kind=SimpleNamespace(per_session=per_session), community_seats=community_seats, is_free=free
    )


def date(pool_id: int):
    return SimpleNamespace(seat_pool_id=pool_id)


def test_a_workshop_shows_its_one_pools_figure():
    shown = community_seats_shown(offering(False), [date(7), date(7)], None, {7: 2})
    assert shown == CommunityShown(left=2, offered=True)
    assert community_seats_shown(offering(False), [date(7)], None, {7: 0}) == CommunityShown(0, False)


def test_a_class_shows_the_date_chosen():
    dates = [date(1), date(2)]
    assert community_seats_shown(offering(True), dates, dates[1], {1: 0, 2: 1}) == CommunityShown(1, True)
    assert community_seats_shown(offering(True), dates, dates[0], {1: 0, 2: 1}) == CommunityShown(0, False)


def test_a_class_with_no_date_chosen_says_none_while_any_date_keeps_one():
    dates = [date(1), date(2)]
    assert community_seats_shown(offering(True), dates, None, {1: 0, 2: 1}) == CommunityShown(None, True)
    assert community_seats_shown(offering(True), dates, None, {1: 0, 2: 0}) == CommunityShown(0, False)


def test_nothing_is_offered_where_no_seats_are_kept_or_all_is_free():
    assert not community_seats_shown(offering(False, community_seats=0), [date(7)], None, {7: 0}).offered
    assert not community_seats_shown(offering(False, free=True), [date(7)], None, {7: 0}).offered
