"""Loaded into the proxy by `bench.health_under_load --probe` (this directory goes first on its
PYTHONPATH): a 5 ms timer on the proxy's event loop notes every time it ran more than 30 ms late,
with the CPU time the loop's thread and the whole process used meanwhile. Low CPU during a long
lag means the process was waiting for a core (a busy machine), not holding its loop.

Lines `at wall_ms loop_thread_cpu_ms process_cpu_ms` go to $CAPSEM_LOOP_PROBE_FILE (`at`: when the
lag ended, time.perf_counter(), the same clock in every process of the machine on Linux).
"""

import os
import threading
import time

import uvloop

_PATH = os.environ.get("CAPSEM_LOOP_PROBE_FILE", "")
_LATE_S = 0.030
_lags: list[tuple[float, float, float, float]] = []
_new_event_loop = uvloop.new_event_loop


def _write() -> None:
    with open(_PATH, "w", encoding="utf-8") as out:
        out.writelines(f"{at:.4f} {wall * 1000:.1f} {own * 1000:.1f} {process * 1000:.1f}\n"
                       for at, wall, own, process in _lags)


def _writer() -> None:
    while True:
        time.sleep(1.0)
        _write()


def _probed_loop() -> uvloop.Loop:
    loop = _new_event_loop()
    last = [time.perf_counter(), time.thread_time(), time.process_time()]

    def tick() -> None:
        now = [time.perf_counter(), time.thread_time(), time.process_time()]
        if now[0] - last[0] > _LATE_S:
            _lags.append((now[0], now[0] - last[0], now[1] - last[1], now[2] - last[2]))
        last[:] = now
        loop.call_later(0.005, tick)

    loop.call_soon(tick)
    threading.Thread(target=_writer, daemon=True).start()
    return loop


if _PATH:
    uvloop.new_event_loop = _probed_loop
