"""The concurrent.futures figures, Python side, written for this workspace as the counterparts
of pool/benches/futures.rs: ThreadPoolExecutor(4), one trivial call's submit then result()
one after another (ns per round trip), and 10 000 trivial calls submitted then as_completed
over their futures (futures/s). Median of 7 runs after a warm-up; BENCH lines."""
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

RUNS = 7
WORKERS = 4


def ident(x):
    return x


def bench(name, unit, f, convert, params):
    f()
    times = sorted(f() for _ in range(RUNS))
    values = [convert(t) for t in times]
    print("BENCH " + json.dumps({
        "name": name, "unit": unit, "value": convert(statistics.median(times)),
        "params": dict(params, min=min(values), max=max(values), runs=RUNS),
    }), flush=True)


def main():
    with ThreadPoolExecutor(WORKERS) as ex:
        trips = 20_000

        def round_trips():
            t = time.perf_counter()
            for i in range(trips):
                assert ex.submit(ident, i).result() == i
            return time.perf_counter() - t
        bench("futures_submit_result_round_trip", "ns", round_trips,
              lambda t: t * 1e9 / trips, {"max_workers": WORKERS, "ops": trips})

        n = 10_000

        def completed():
            t = time.perf_counter()
            fs = [ex.submit(ident, i) for i in range(n)]
            total = sum(f.result() for f in as_completed(fs))
            assert total == n * (n - 1) // 2
            return time.perf_counter() - t
        bench("futures_as_completed", "futures/s", completed, lambda t: n / t,
              {"max_workers": WORKERS, "futures": n})


if __name__ == "__main__":
    main()
