"""The process-shared Event hand-off figure, Python side, written for this workspace as the
counterpart of the ipc chapter's `ipc_event_set_to_wake`: a parent and a child process ping-pong
through two multiprocessing.Events; half a round trip is one set() -> wait() hand-off between
processes. Reported pinned to one core and unpinned (as the Rust side). One BENCH line each,
microseconds, median of 5 runs after a warm-up."""
import json
import multiprocessing as mp
import os
import statistics
import time

ROUNDS = 2_000


def echo(ping, pong, stop):
    while True:
        ping.wait()
        ping.clear()
        if stop.is_set():
            return
        pong.set()


def run():
    ping, pong, stop = mp.Event(), mp.Event(), mp.Event()
    p = mp.Process(target=echo, args=(ping, pong, stop))
    p.start()
    start = time.perf_counter()
    for _ in range(ROUNDS):
        pong.clear()
        ping.set()
        pong.wait()
    elapsed = time.perf_counter() - start
    stop.set()
    ping.set()
    p.join()
    return elapsed / (2 * ROUNDS) * 1e6


def report(pinned):
    run()
    v = sorted(run() for _ in range(5))
    print("BENCH " + json.dumps({"name": "ipc_event_set_to_wake", "unit": "us",
                                 "value": statistics.median(v),
                                 "params": {"pinned": pinned,
                                            "via": "multiprocessing.Event, two processes",
                                            "min": v[0], "max": v[-1], "runs": 5}}), flush=True)


def main():
    mp.set_start_method("fork")
    report("no")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        report("one core")


if __name__ == "__main__":
    main()
