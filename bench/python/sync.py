"""The Semaphore figure, Python side, written for this workspace as the counterpart of the sync
chapter's `semaphore_acquire_release` (uncontended): `with sem:` one million times. One BENCH
line (nanoseconds per acquire+release, median of 7 runs after a warm-up)."""
import json
import statistics
import threading
import time

OPS = 1_000_000


def run(sem):
    t = time.perf_counter()
    for _ in range(OPS):
        with sem:
            pass
    return (time.perf_counter() - t) / OPS * 1e9


def main():
    sem = threading.Semaphore(1)
    run(sem)
    v = sorted(run(sem) for _ in range(7))
    print("BENCH " + json.dumps({"name": "semaphore_acquire_release", "unit": "ns",
                                 "value": statistics.median(v),
                                 "params": {"contended": "no", "via": "threading.Semaphore",
                                            "min": v[0], "max": v[-1], "runs": 7}}))


if __name__ == "__main__":
    main()
