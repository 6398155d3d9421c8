"""A watchdog for the data plane's event loop: did one callback hold it for more than a few ms?

asyncio's debug mode (``loop.slow_callback_duration``, what aiohttp's test loop turns
on) times ``Handle`` callbacks only; uvloop calls a protocol's ``data_received`` straight
from libuv, so the data plane's whole hot path would go unwatched (checked: a
``time.sleep(0.05)`` in ``data_received`` logs nothing on uvloop). So a sampler thread
watches the loop's thread from outside, every millisecond:

- which callback it is in: the outermost Python frame above the thread's own frames
  (one frame object per call; the sampler holds it, so its identity is exact; a
  coroutine's frame outlives an ``await``, so there the resume point counts too);
- the thread's CPU clock (``pthread_getcpuclockid``);
- whether the thread sleeps, and in which system call (``/proc/self/task/<tid>/stat``
  and ``.../syscall``).

Wall-clock time cannot be the measure on a shared 2-core machine: a runnable thread
there waits tens of milliseconds for a CPU (and ``schedstat``'s run-queue time is not
trustworthy in the VM the tests run in), and a GIL hand-over costs up to the 5 ms switch
interval. Two measures are immune to both:

- ``cpu``: CPU time used by one callback (one frame object seen in a row): a callback
  computing that long. A thread waiting for a CPU or for the GIL uses none. Garbage
  collections that happen to run on the loop's thread are left out (``gc.callbacks``):
  their length is the test process's heap, not the callback's work.
- ``sleep``: wall time the thread spent asleep, inside a callback, in a system call
  other than ``futex`` (the GIL, locks): ``time.sleep``, a blocking ``recv`` or
  ``connect``, file I/O that had to wait. A sleeping thread is not waiting for a CPU,
  so load on the machine does not stretch this either.

Both are lower bounds (the first and last sightings of a callback are up to a sample
apart, longer when the sampler itself waits for the GIL), so they never overstate; the
limits and their reasons are below.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import platform
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Final

SAMPLE: Final = 0.001
# The limits. Measured over tests/dataplane, three full runs on the 2-vCPU VM at load
# average 9-12 (PORTWAY_LOOPWATCH_REPORT=<file> writes each test's worst values):
# - sleep: no callback ever slept in a system call (worst 0.0 ms): the data plane does no
#   blocking I/O, so any sleep is a bug; 5 ms is "a few" with room for a page fault or a
#   file read that had to wait.
# - cpu: the longest callbacks build an ssl.SSLContext (load_cert_chain: the default
#   certificate at start-up, or a certificate's first handshake in the SNI callback),
#   worst 4.1 ms. Under that load CPU time itself is inflated: the VM's steal time is
#   counted into the thread's CPU clock (the hot path measured ~28 us/request here
#   against ~8 us on an idle machine). 15 ms is 3.5x the worst seen, still well under a
#   100 ms stall a user would notice, and far below what a real mistake costs on a real
#   table (a scan of 100 000 routes, a synchronous resolver call).
CPU_LIMIT: Final = 0.015
SLEEP_LIMIT: Final = 0.005

# System calls a thread waiting for the GIL or a lock sleeps in (futex, futex_waitv);
# elsewhere only the CPU measure runs.
_GIL_WAIT: Final = {"x86_64": {202, 449}, "aarch64": {98, 449}}.get(platform.machine())


@dataclass
class Block:
    kind: str  # "cpu" or "sleep"
    seconds: float
    stack: str

    def __str__(self) -> str:
        ms = self.seconds * 1000
        return f"event loop held by one callback ({self.kind}) for {ms:.1f} ms at:\n{self.stack}"


@dataclass
class LoopWatch:
    """Watches one event loop running in its own thread (see the module docstring)."""

    loop: Any
    cpu_limit: float = CPU_LIMIT
    sleep_limit: float = SLEEP_LIMIT
    blocks: list[Block] = field(default_factory=list)
    worst: dict[str, float] = field(default_factory=lambda: {"cpu": 0.0, "sleep": 0.0})
    _ident: int = 0
    _tid: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _sampler: threading.Thread | None = None
    _gc_cpu: float = 0.0  # CPU the loop's thread spent collecting garbage, in total
    _gc_from: float = 0.0
    _in_gc: bool = False  # a collection runs on the loop's thread right now

    def start(self) -> None:
        self.loop.call_soon_threadsafe(self._begin)
        if not self._ready.wait(10):
            raise RuntimeError("the watched loop does not run")
        gc.callbacks.append(self._gc)
        self._sampler = threading.Thread(target=self._run, daemon=True, name="loopwatch")
        self._sampler.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            self._sampler.join(5)
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        # A collection runs in whichever thread allocates when it is due, and its length
        # depends on the whole heap: the test process's, far larger than a worker's (which
        # freezes its start-up heap). It is the process's pause, not the callback's work.
        if threading.get_ident() != self._ident:
            return
        if phase == "start":
            self._gc_from = time.thread_time()
            self._in_gc = True
        else:
            self._gc_cpu += time.thread_time() - self._gc_from
            self._in_gc = False

    def _begin(self) -> None:  # on the loop's thread, once
        self._ident = threading.get_ident()
        self._tid = threading.get_native_id()
        self._ready.set()

    def _run(self) -> None:
        task = Path(f"/proc/self/task/{self._tid}")
        clock = time.pthread_getcpuclockid(self._ident)
        seen: object = None  # the callback (step) of the last sample
        cpu_from = 0.0  # the thread's CPU clock when ``seen`` was first sampled
        asleep_from = 0.0  # when a run of samples asleep in a blocking syscall began
        reported: set[str] = set()
        while not self._stop.wait(SAMPLE):
            frame = _callback_frame(sys._current_frames().get(self._ident))
            step = _step(frame)
            if self._in_gc:
                # Mid-collection, its CPU is not subtracted yet (that happens when it
                # ends, after the other gc.callbacks): this sample cannot judge.
                continue
            cpu_now = time.clock_gettime(clock) - self._gc_cpu  # (a collection holds the GIL)
            if step != seen:
                seen, cpu_from, asleep_from = step, cpu_now, 0.0
                reported.clear()
            if frame is None:
                continue  # in the loop itself: idle, or libuv/uvloop code
            cpu = cpu_now - cpu_from  # from the first to this sighting of the callback
            self._worst("cpu", cpu)
            if cpu > self.cpu_limit and "cpu" not in reported:
                reported.add("cpu")
                self._block("cpu", cpu, frame)
            if _GIL_WAIT is None:
                continue
            now = time.monotonic()
            if _blocking_sleep(task):
                asleep_from = asleep_from or now
                self._worst("sleep", now - asleep_from)
                if now - asleep_from > self.sleep_limit and "sleep" not in reported:
                    reported.add("sleep")
                    self._block("sleep", now - asleep_from, frame)
            else:
                asleep_from = 0.0

    def _worst(self, kind: str, seconds: float) -> None:
        self.worst[kind] = max(self.worst[kind], seconds)

    def _block(self, kind: str, seconds: float, callback: FrameType) -> None:
        self._worst(kind, seconds)
        frame = sys._current_frames().get(self._ident)
        stack = traceback.format_stack(frame, limit=12) if frame is not None else []
        self.blocks.append(Block(kind, seconds, "".join(stack) or repr(callback)))


def _callback_frame(frame: FrameType | None) -> FrameType | None:
    """The outermost frame of the callback the loop's thread runs (None: none runs)."""
    outer = None
    while frame is not None and not frame.f_code.co_filename.endswith("threading.py"):
        outer, frame = frame, frame.f_back
    return outer


def _step(frame: FrameType | None) -> object:
    """What identifies one callback: its outermost frame, and for a coroutine (whose frame
    lives on across awaits) also the instruction it was resumed at."""
    if frame is None or not frame.f_code.co_flags & inspect.CO_COROUTINE:
        return frame
    return (frame, frame.f_lasti)


def _blocking_sleep(task: Path) -> bool:
    """Whether the thread sleeps in a system call other than a futex (GIL, lock)."""
    try:
        state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
        if state not in ("S", "D"):
            return False  # running, or runnable and waiting for a CPU
        call = (task / "syscall").read_text().split()[0]
    except (OSError, IndexError):
        return False
    assert _GIL_WAIT is not None
    return call != "running" and int(call) not in _GIL_WAIT
