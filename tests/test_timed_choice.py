"""fastnn._timed_choice: the faster of two equivalent ways of a step, found and followed by timing."""
import time

from fastnn._timed_choice import TimedChoice


def _ways(slow):
    """A step whose way `slow` takes about a millisecond longer; it records the ways taken."""
    taken = []

    def step(way):
        taken.append(way)
        if way == slow:
            time.sleep(0.001)
        return way * 10

    return step, taken


def _run(choice, step):
    way = choice.next_way()
    start = time.perf_counter()
    result = step(way)
    choice.took(way, time.perf_counter() - start)
    return result


def test_settles_on_the_faster_way_and_keeps_exploring():
    for slow in (0, 1):
        choice = TimedChoice(explore_every=8, window=3)
        step, taken = _ways(slow)
        results = [_run(choice, step) for _ in range(64)]
        assert results == [10 * w for w in taken]
        assert choice.best == 1 - slow
        late = taken[16:]
        assert late.count(slow) == sum(1 for i in range(17, 65) if i % 8 == 0)  # only the exploring steps


def test_follows_a_change_of_which_way_is_faster():
    choice = TimedChoice(explore_every=4, window=3)
    step, taken = _ways(1)
    for _ in range(20):
        _run(choice, step)
    assert choice.best == 0
    step, taken = _ways(0)  # the machine changed: way 0 is now the slow one
    for _ in range(20):
        _run(choice, step)
    assert choice.best == 1
