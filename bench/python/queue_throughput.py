"""The queue figures, Python side, written for this workspace as the counterparts of the queues
chapter's 1-producer-1-consumer benches: queue.Queue at maxsize 1000 and 3, LifoQueue and
PriorityQueue at maxsize 1000. One BENCH line each (items per second, median of 5 runs after a
warm-up). Fewer items than the Rust side, which is ~50x faster: the rate is what is compared."""
import json
import queue
import statistics
import threading
import time


def run(make, n):
    q = make()
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


def report(name, make, n, params):
    run(make, n // 10)
    times = sorted(run(make, n) for _ in range(5))
    print("BENCH " + json.dumps({
        "name": name, "unit": "items/s", "value": n / statistics.median(times),
        "params": dict(params, items=n, min=n / times[-1], max=n / times[0], runs=5),
    }), flush=True)


def main():
    report("queue_1p1c_fifo", lambda: queue.Queue(1000), 200_000,
           {"maxsize": 1000, "via": "queue.Queue"})
    report("queue_1p1c_fifo", lambda: queue.Queue(3), 30_000,
           {"maxsize": 3, "via": "queue.Queue"})
    report("queue_1p1c_lifo", lambda: queue.LifoQueue(1000), 200_000,
           {"maxsize": 1000, "via": "queue.LifoQueue"})
    report("queue_1p1c_priority", lambda: queue.PriorityQueue(1000), 200_000,
           {"maxsize": 1000, "via": "queue.PriorityQueue"})


if __name__ == "__main__":
    main()
