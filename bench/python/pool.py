"""The pool figures, Python side, written for this workspace as the counterparts of the pool
chapter's bench: 20 000 trivial apply_async tasks with a callback on Pool(2) and Pool(5), and
map over 200 000 items (default chunk size). Median of 5 runs after a warm-up; BENCH lines."""
import json
import multiprocessing as mp
import statistics
import time


def square(x):
    return x * x


def apply_async_run(pool, n):
    done = [0]

    def cb(_):
        done[0] += 1

    t = time.perf_counter()
    results = [pool.apply_async(square, (i,), callback=cb) for i in range(n)]
    for r in results:
        r.get()
    elapsed = time.perf_counter() - t
    assert done[0] == n
    return elapsed


def bench(name, runs, f, amount, params):
    f()
    times = sorted(f() for _ in range(runs))
    print("BENCH " + json.dumps({
        "name": name, "unit": "tasks/s", "value": amount / statistics.median(times),
        "params": dict(params, min=amount / times[-1], max=amount / times[0], runs=runs),
    }), flush=True)


def main():
    mp.set_start_method("fork")
    for workers in (2, 5):
        with mp.Pool(workers) as pool:
            bench("pool_apply_async_callback", 5, lambda: apply_async_run(pool, 20_000), 20_000,
                  {"processes": workers, "tasks": 20_000})
    with mp.Pool(2) as pool:
        items = list(range(200_000))

        def run_map():
            t = time.perf_counter()
            pool.map(square, items)
            return time.perf_counter() - t
        bench("pool_map", 5, run_map, 200_000, {"processes": 2, "chunksize": "default"})


if __name__ == "__main__":
    main()
