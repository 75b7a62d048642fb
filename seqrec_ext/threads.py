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
import statistics
import time
from typing import List, Optional, Sequence

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
    facts["trainers' thread policy"] = ("timed: each candidate of " + str(candidate_threads())
                                        + " tried on the loop's own steps, the fastest kept (--threads N fixes it)")
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
    :func:`candidate_threads`). The first steps run at the count that did a small matrix
    product fastest when the tuner started (a few milliseconds); from then on the loop's own
    steps decide (``start`` fixes the first count instead). Probes are at least
    ``steps_between_probes`` steps apart, so that a loop of long steps does not spend a large
    share of its time on them.
    """

    def __init__(self, threads: Optional[int] = None, *, candidates: Optional[Sequence[int]] = None,
                 probe_steps: int = 4, warmup_steps: int = 2, first_interval: float = 1.0,
                 max_interval: float = 60.0, give_up_ratio: float = 3.0, steps_between_probes: int = 50,
                 start: Optional[int] = None):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.fixed = threads
        self.probe_steps, self.warmup_steps = probe_steps, warmup_steps
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
        self._since_probe = 0
        self._last = time.perf_counter()
        self._steps = 0
        self._recent: List[float] = []  # seconds per event of the current setting's latest steps
        self._probe: Optional[dict] = None
        self._interval = self.first_interval
        self._next_probe = self._last  # probe as soon as the warm-up steps are done
        return self

    def _quick_choice(self, size: int = 384, repeats: int = 5) -> int:
        """The candidate that runs a small matrix product fastest right now (median of a few)."""
        if len(self.candidates) == 1:
            return self.candidates[0]
        a = torch.rand(size, size)
        best, best_time = self.candidates[0], float("inf")
        for c in self.candidates:
            torch.set_num_threads(c)
            times = []
            for _ in range(repeats + 1):  # (the first wakes the threads)
                start = time.perf_counter()
                torch.mm(a, a)
                times.append(time.perf_counter() - start)
            t = statistics.median(times[1:])
            if t < best_time:
                best, best_time = c, t
        return best

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self._before)

    @property
    def threads(self) -> int:
        return self.current

    # ---- the loop calls this ----

    def step(self, events: int) -> None:
        now = time.perf_counter()
        per_event = (now - self._last) / max(events, 1)
        self._steps += 1
        if self.fixed is not None or len(self.candidates) == 1 or self._steps <= self.warmup_steps:
            self._last = time.perf_counter()
            return
        if self._probe is None:
            self._recent = (self._recent + [per_event])[-self.probe_steps:]
            self._since_probe += 1
            if (now >= self._next_probe and len(self._recent) == self.probe_steps
                    and (self._since_probe >= self.steps_between_probes or not self.history)):
                others = [c for c in self.candidates if c != self.current]
                self._probe = {"results": {self.current: statistics.median(self._recent)}, "todo": others,
                               "times": []}
                self._try_next()
        else:
            probe = self._probe
            probe["times"].append(per_event)
            reference = probe["results"][probe["home"]]
            too_slow = per_event > self.give_up_ratio * reference
            if too_slow or len(probe["times"]) == self.probe_steps:
                probe["results"][self.current] = float("inf") if too_slow else statistics.median(probe["times"])
                self._try_next()
        self._last = time.perf_counter()

    def _try_next(self) -> None:
        probe = self._probe
        probe.setdefault("home", self.current)
        if probe["todo"]:
            self.current = probe["todo"].pop(0)
            probe["times"] = []
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
