"""How many intra-op threads a training loop uses, chosen by timing its own steps.

A training step is a chain of short parallel regions (matrix products, the ops' row passes),
and every region ends in a barrier. When another process takes one of the cores, the thread
on that core is descheduled and the others wait for it at every barrier: on a 2-core machine
with one core busy, two threads ran GRU4Rec 56x slower than one. Which setting is best depends
on the machine's load, which changes while a job runs, so the trainers do not guess it: a
:class:`ThreadTuner` times the loop's own steps at each candidate thread count now and then
(a few steps each; a candidate much slower than the current setting is dropped after its
first step) and keeps the fastest per event. Between probes the setting is fixed. The probe
interval doubles while the choice holds (up to ``max_interval`` seconds) and starts over when
it changes. The waiting itself happens in the OpenMP runtime (behind torch's
parallel_for and BLAS), whose wait policy is fixed when the process starts
(``OMP_WAIT_POLICY``); the thread count is what a running loop can still change.

``threads=N`` fixes the count instead (``--threads N`` on the command line). Results do not
depend on the count beyond float rounding, but they do in the last bits (BLAS and torch's
reductions sum in another order on more threads): a run that must repeat bit for bit, or be
resumed bit for bit, fixes the count.
"""

from __future__ import annotations

import os
import time
from typing import List, Optional, Sequence, Tuple

import torch

__all__ = ["ThreadTuner", "available_cores", "thread_facts"]


def available_cores() -> int:
    """The cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def thread_facts() -> dict:
    """What the process will use: intra-op threads, cores allowed, load, OpenMP waiting."""
    facts = {"intra-op threads (torch default)": torch.get_num_threads(), "cores in affinity mask": available_cores()}
    try:
        facts["load average (1 min)"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    facts["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "-")
    facts["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "-")
    facts["trainers' thread policy"] = (
        "timed: each candidate of "
        + str(candidate_threads())
        + " tried on the loop's own steps, the fastest kept (--threads N fixes it)"
    )
    return facts


def candidate_threads(limit: Optional[int] = None) -> List[int]:
    """1, half and all of the usable cores (at most torch's current count)."""
    n = max(1, min(available_cores(), limit or torch.get_num_threads()))
    return sorted({1, max(1, n // 2), n})


class ThreadTuner:
    """Call :meth:`step` after every step of a loop with the step's events (rows, users...);
    the tuner times the steps and sets ``torch.set_num_threads`` between them. Use as a
    context manager: the thread count in force before is restored at the end.

    ``threads``: a fixed count (no probing); None: probe the ``candidates`` (default
    :func:`candidate_threads`). A setting is judged by its seconds per event over a window of
    at least ``probe_steps`` steps and ``window`` seconds: a total, not a median, since on a
    busy machine most steps may run at full speed while a few wait for a descheduled thread
    for milliseconds. A candidate that is already ``give_up_ratio`` times slower than the
    current setting after any of its steps is dropped at once. The first steps run at the
    count that did a small matrix product fastest over ``window`` seconds when the tuner
    started (``start`` fixes the first count instead); from then on the loop's own steps
    decide. Probes are at least ``steps_between_probes`` steps apart, so that a loop of long
    steps spends a bounded share of its time on them.
    """

    def __init__(
        self,
        threads: Optional[int] = None,
        *,
        candidates: Optional[Sequence[int]] = None,
        probe_steps: int = 4,
        window: float = 0.03,
        warmup_steps: int = 2,
        first_interval: float = 1.0,
        max_interval: float = 60.0,
        give_up_ratio: float = 1.5,
        steps_between_probes: int = 50,
        start: Optional[int] = None,
    ):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.fixed = threads
        self.probe_steps, self.window, self.warmup_steps = probe_steps, window, warmup_steps
        self.first_interval, self.max_interval, self.give_up_ratio = first_interval, max_interval, give_up_ratio
        self.steps_between_probes, self.start = steps_between_probes, start
        if threads is not None:
            self.candidates = [threads]
        else:
            self.candidates = sorted(set(candidates)) if candidates else candidate_threads()
        self.history: List[tuple] = []  # (time, chosen threads, seconds per event of each tried)

    # ---- context ----

    def __enter__(self) -> "ThreadTuner":
        self._before = torch.get_num_threads()
        if self.fixed is not None:
            self.current = self.fixed
        else:
            self.current = self.start if self.start in self.candidates else self._quick_choice()
        torch.set_num_threads(self.current)
        self._last = time.perf_counter()
        self._steps = self._since_probe = 0
        self._recent: List[Tuple[float, int]] = []  # (seconds, events) of the current setting's latest steps
        self._probe: Optional[dict] = None
        self._interval = self.first_interval
        self._next_probe = self._last  # probe as soon as the warm-up steps are done
        return self

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self._before)

    @property
    def threads(self) -> int:
        return self.current

    def _quick_choice(self, size: int = 256) -> int:
        """The candidate that runs small matrix products fastest over ``window`` seconds now."""
        if len(self.candidates) == 1:
            return self.candidates[0]
        a = torch.rand(size, size)
        rates = {}
        for c in self.candidates:
            torch.set_num_threads(c)
            torch.mm(a, a)  # (wakes the threads)
            start, n = time.perf_counter(), 0
            while time.perf_counter() - start < self.window:
                torch.mm(a, a)
                n += 1
            rates[c] = n / (time.perf_counter() - start)
        return max(rates, key=rates.get)

    # ---- the loop calls this ----

    def _full(self, window: List[Tuple[float, int]]) -> bool:
        return len(window) >= self.probe_steps and sum(t for t, _ in window) >= self.window

    @staticmethod
    def _per_event(window: List[Tuple[float, int]]) -> float:
        return sum(t for t, _ in window) / max(sum(n for _, n in window), 1)

    def step(self, events: int) -> None:
        now = time.perf_counter()
        sample = (now - self._last, max(int(events), 1))
        self._steps += 1
        if self.fixed is not None or len(self.candidates) == 1 or self._steps <= self.warmup_steps:
            self._last = time.perf_counter()
            return
        if self._probe is None:
            self._recent.append(sample)
            while len(self._recent) > self.probe_steps and self._full(self._recent[1:]):
                self._recent.pop(0)
            self._since_probe += 1
            if (
                now >= self._next_probe
                and self._full(self._recent)
                and (self._since_probe >= self.steps_between_probes or not self.history)
            ):
                others = [c for c in self.candidates if c != self.current]
                self._probe = {
                    "home": self.current,
                    "results": {self.current: self._per_event(self._recent)},
                    "todo": others,
                    "window": [],
                }
                self._try_next()
        else:
            probe = self._probe
            probe["window"].append(sample)
            rate = self._per_event(probe["window"])
            too_slow = rate > self.give_up_ratio * probe["results"][probe["home"]]
            if too_slow or self._full(probe["window"]):
                probe["results"][self.current] = float("inf") if too_slow else rate
                self._try_next()
        self._last = time.perf_counter()

    def _try_next(self) -> None:
        probe = self._probe
        if probe["todo"]:
            self.current = probe["todo"].pop(0)
            probe["window"] = []
            torch.set_num_threads(self.current)
            return
        best = min(probe["results"], key=probe["results"].get)
        changed = best != probe["home"]
        self.history.append((time.perf_counter(), best, dict(probe["results"])))
        self.current = best
        torch.set_num_threads(best)
        self._probe, self._recent, self._since_probe = None, [], 0
        self._interval = self.first_interval if changed else min(2 * self._interval, self.max_interval)
        self._next_probe = time.perf_counter() + self._interval
