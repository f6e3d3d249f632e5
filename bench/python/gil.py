"""The GIL figure, Python side: count primes below LIMIT by trial division, once on one thread
and once split over N threads (and, with --processes, over N processes).

Written for this workspace as the counterpart of threads::gil. Same job, same split, same
result as the Rust side: numbers are dealt to the n workers in blocks of 1000, round-robin.

Default output is one BENCH line (see DESIGN.md). With --plain it prints
"primes serial_s threaded_s processes_s" for the threads lesson to read.
"""
import argparse
import json
import multiprocessing
import threading
import time


def is_prime(n):
    if n < 2:
        return False
    if n % 2 == 0:
        return n == 2
    d = 3
    while d * d <= n:
        if n % d == 0:
            return False
        d += 2
    return True


BLOCK = 1000


def count(k, n, limit):
    """Primes below limit in worker k's blocks: [k*BLOCK, (k+1)*BLOCK), [(k+n)*BLOCK, ...)..."""
    total = 0
    for start in range(k * BLOCK, limit, n * BLOCK):
        total += sum(1 for x in range(start, min(start + BLOCK, limit)) if is_prime(x))
    return total


def threaded(limit, n):
    results = [0] * n

    def work(k):
        results[k] = count(k, n, limit)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(results)


def processes(limit, n):
    with multiprocessing.Pool(n) as pool:
        return sum(pool.starmap(count, [(k, n, limit) for k in range(n)]))


def timed(f, *args):
    t = time.perf_counter()
    value = f(*args)
    return value, time.perf_counter() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, default=200_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--processes", action="store_true")
    p.add_argument("--plain", action="store_true")
    a = p.parse_args()
    primes, serial_s = timed(count, 0, 1, a.limit)
    primes_t, threaded_s = timed(threaded, a.limit, a.threads)
    processes_s = 0.0
    if a.processes:
        primes_p, processes_s = timed(processes, a.limit, a.threads)
        assert primes_p == primes
    assert primes_t == primes
    if a.plain:
        print(primes, serial_s, threaded_s, processes_s)
        return
    print("BENCH " + json.dumps({
        "name": "gil_speedup",
        "unit": "x",
        "value": serial_s / threaded_s,
        "params": {"threads": a.threads, "limit": a.limit, "primes": primes,
                   "serial_s": serial_s, "threaded_s": threaded_s,
                   "processes_speedup": serial_s / processes_s if processes_s else None},
    }))


if __name__ == "__main__":
    main()
