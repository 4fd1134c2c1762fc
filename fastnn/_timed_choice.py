"""The faster of two ways to run the same step, chosen by timing them as the steps go.

Both ways must give the same bits (fastnn's kernels never split a sum differently by thread count), so the
choice changes only the time. A step on two threads can beat one thread on an idle machine and lose badly
when the other CPU is busy with work that this process cannot see (another tenant's virtual CPU shows
neither in /proc/loadavg nor as steal time here): at batch 1 the mlp's training step measured 34 us on two
threads against 39 us on one, and 85 us on two at other times.
"""
import time

clock = time.perf_counter


class TimedChoice:
    """Way 0 or way 1 of a step: mostly the one whose recent steps were faster, and the other one every
    `explore_every` steps so that a change of the machine's state is noticed.

    Use: ``way = choice.next_way()``, time the step run that way, then ``choice.took(way, seconds)``.
    """

    def __init__(self, explore_every=32, window=5):
        self.explore_every, self.window = explore_every, window
        self.recent = ([], [])  # seconds of the last `window` steps of each way
        self.best = 1           # the way taken when not exploring
        self._count = 0

    def next_way(self):
        self._count += 1
        other = 1 - self.best
        return other if self._count % self.explore_every == 0 or len(self.recent[other]) < 2 else self.best

    def took(self, way, seconds):
        times = self.recent[way]
        times.append(seconds)
        if len(times) > self.window:
            del times[0]
        if way != self.best and len(times) >= 2 and self.recent[self.best]:  # after exploring: a sort costs
            self.best = min((0, 1), key=lambda w: sorted(self.recent[w])[len(self.recent[w]) // 2])
