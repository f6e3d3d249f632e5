"""The locked-counter figure, Python side: 4 threads each add 1 to a shared counter 250 000
times under one threading.Lock. Written for this workspace as the counterpart of the sync
chapter's `locked_counter` bench. Prints one BENCH line (median of 5 runs after a warm-up)."""
import json
import statistics
import threading
import time

THREADS = 4
PER_THREAD = 250_000


def run():
    lock = threading.Lock()
    counter = [0]

    def work():
        for _ in range(PER_THREAD):
            with lock:
                counter[0] += 1

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t
    assert counter[0] == THREADS * PER_THREAD
    return elapsed


def main():
    run()
    times = sorted(run() for _ in range(5))
    total = THREADS * PER_THREAD
    print("BENCH " + json.dumps({
        "name": "locked_counter",
        "unit": "increments/s",
        "value": total / statistics.median(times),
        "params": {"threads": THREADS, "increments": total,
                   "min": total / times[-1], "max": total / times[0], "runs": len(times)},
    }))


if __name__ == "__main__":
    main()
