"""The queue figure, Python side: one producer thread puts N integers into a queue.Queue
(maxsize 1000 by default), one consumer thread gets them. Written for this workspace as the
counterpart of the queues chapter's `queue_1p1c_fifo` bench. Prints one BENCH line (median of 5
runs after a warm-up), in items per second."""
import argparse
import json
import queue
import statistics
import threading
import time


def run(n, maxsize):
    q = queue.Queue(maxsize)
    total = [0]

    def consume():
        s = 0
        for _ in range(n):
            s += q.get()
        total[0] = s

    t = threading.Thread(target=consume)
    start = time.perf_counter()
    t.start()
    for i in range(n):
        q.put(i)
    t.join()
    elapsed = time.perf_counter() - start
    assert total[0] == n * (n - 1) // 2
    return elapsed


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=200_000)
    p.add_argument("--maxsize", type=int, default=1000)
    a = p.parse_args()
    run(a.items // 10, a.maxsize)
    times = sorted(run(a.items, a.maxsize) for _ in range(5))
    print("BENCH " + json.dumps({
        "name": "queue_1p1c_fifo",
        "unit": "items/s",
        "value": a.items / statistics.median(times),
        "params": {"maxsize": a.maxsize, "items": a.items, "via": "queue.Queue",
                   "min": a.items / times[-1], "max": a.items / times[0], "runs": len(times)},
    }))


if __name__ == "__main__":
    main()
