"""The thread figure, Python side, written for this workspace as the counterpart of the threads
chapter's `thread_spawn_join_1000`: 1000 threading.Thread started, then joined. One BENCH line
(milliseconds per 1000, median of 9 runs after a warm-up)."""
import json
import statistics
import threading
import time


def run():
    ts = [threading.Thread(target=lambda: None) for _ in range(1000)]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return (time.perf_counter() - t) * 1e3


def main():
    run()
    v = sorted(run() for _ in range(9))
    print("BENCH " + json.dumps({"name": "thread_spawn_join_1000", "unit": "ms",
                                 "value": statistics.median(v),
                                 "params": {"threads": 1000, "via": "threading.Thread",
                                            "min": v[0], "max": v[-1], "runs": 9}}))


if __name__ == "__main__":
    main()
