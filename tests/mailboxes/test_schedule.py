"""The free/busy values every calendar kind shares (gateway/mailboxes/schedule.py): for any
blocks, the common free time overlaps no block that keeps a meeting away and, with those
blocks, covers the whole window; the merged view has a digit per interval, the strongest
status there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from gateway.mailboxes.schedule import OPEN, BusyBlock, FreeBusy, Schedule, common_free, merged_view

START = datetime(2026, 12, 7, 8, tzinfo=UTC)
END = START + timedelta(hours=10)

blocks = st.lists(
    st.builds(
        lambda at, length, status: BusyBlock(START + timedelta(minutes=at), START + timedelta(minutes=at + length), status),
        st.integers(-120, 700),
        st.integers(1, 300),
        st.sampled_from(list(FreeBusy)),
    ),
    max_size=8,
)


@given(st.lists(blocks, min_size=1, max_size=3))
def test_common_free_time_avoids_every_closed_block_and_leaves_nothing_out(calendars):
    schedules = [Schedule(f"p{i}@example.com", START, END, tuple(b)) for i, b in enumerate(calendars)]
    free = common_free(schedules, START, END)
    closed = [b for s in schedules for b in s.blocks if b.status not in OPEN]
    for a, b in free:
        assert START <= a < b <= END
        assert not any(c.start < b and c.end > a for c in closed)
    # every minute of the window is free or inside a closed block
    minute = START
    while minute < END:
        assert any(a <= minute < b for a, b in free) or any(c.start <= minute < c.end for c in closed), minute
        minute += timedelta(minutes=1)


@given(blocks, st.sampled_from([5, 30, 60, 45]))
def test_merged_view_has_a_digit_per_interval(some, interval):
    view = merged_view(some, START, END, interval)
    assert len(view) == -(-600 // interval)
    busy_everywhere = [BusyBlock(START, END, FreeBusy.BUSY), *some]
    assert set(merged_view(busy_everywhere, START, END, interval)) <= {"2", "3"}  # only oof is stronger than busy


def test_unanswered_schedules_are_left_out_of_the_common_free_time():
    busy = Schedule("a@example.com", START, END, (BusyBlock(START, START + timedelta(hours=1), FreeBusy.BUSY),))
    gone = Schedule("b@example.com", START, END, error="refused")
    assert common_free([busy, gone], START, END) == [(START + timedelta(hours=1), END)]
    assert common_free([gone], START, END) == []
