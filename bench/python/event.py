"""The Event hand-off figure, Python side, written for this workspace as the counterpart of the
sync chapter's `event_set_to_wake`: two threads ping-pong through two threading.Events; half a
round trip is one set() -> wait() hand-off. Reported pinned to one core and unpinned (as the
Rust side). One BENCH line each, microseconds, median of 7 runs after a warm-up."""
import json
import os
import statistics
import threading
import time

ROUNDS = 5_000


def run():
    ping, pong, stop = threading.Event(), threading.Event(), [False]

    def echo():
        while True:
            ping.wait()
            ping.clear()
            if stop[0]:
                return
            pong.set()

    t = threading.Thread(target=echo)
    t.start()
    start = time.perf_counter()
    for _ in range(ROUNDS):
        pong.clear()
        ping.set()
        pong.wait()
    elapsed = time.perf_counter() - start
    stop[0] = True
    ping.set()
    t.join()
    return elapsed / (2 * ROUNDS) * 1e6


def report(pinned):
    run()
    v = sorted(run() for _ in range(7))
    print("BENCH " + json.dumps({"name": "event_set_to_wake", "unit": "us",
                                 "value": statistics.median(v),
                                 "params": {"pinned": pinned, "via": "threading.Event",
                                            "min": v[0], "max": v[-1], "runs": 7}}), flush=True)


def main():
    report("no")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        report("one core")


if __name__ == "__main__":
    main()
