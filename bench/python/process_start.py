"""The process figures, Python side: start+join of multiprocessing.Process with the fork and
the spawn start methods, per process. Written for this workspace as the counterpart of the
processes chapter's bench. Fork: the seed's pattern, N processes started then joined. Spawn:
M processes one after another (each is a new interpreter). Forkserver: K processes one after
another, the server started (by a first use) before the runs. Prints one BENCH line per method
(median of 5 runs after a warm-up), in microseconds per process."""
import argparse
import json
import multiprocessing as mp
import statistics
import time


def noop():
    pass


def batch(ctx, n):
    procs = [ctx.Process(target=noop) for _ in range(n)]
    t = time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return (time.perf_counter() - t) / n


def sequential(ctx, n):
    t = time.perf_counter()
    for _ in range(n):
        p = ctx.Process(target=noop)
        p.start()
        p.join()
    return (time.perf_counter() - t) / n


def report(name, method, pattern, f, ctx, n, runs=5):
    f(ctx, max(1, n // 10))
    per = sorted(f(ctx, n) for _ in range(runs))
    print("BENCH " + json.dumps({
        "name": name, "unit": "us", "value": statistics.median(per) * 1e6,
        "params": {"method": method, "pattern": pattern, "processes": n,
                   "min": per[0] * 1e6, "max": per[-1] * 1e6, "runs": runs},
    }))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fork", type=int, default=1000)
    p.add_argument("--spawn", type=int, default=20)
    p.add_argument("--forkserver", type=int, default=50)
    a = p.parse_args()
    report("process_start_join", "fork", "1000 started, then joined", batch,
           mp.get_context("fork"), a.fork)
    report("process_spawn_start_join", "spawn", "one after another", sequential,
           mp.get_context("spawn"), a.spawn)
    report("process_forkserver_start_join", "forkserver", "one after another", sequential,
           mp.get_context("forkserver"), a.forkserver)


if __name__ == "__main__":
    main()
