"""The ipc figures, Python side, written for this workspace as the counterparts of the ipc
chapter's bench (same sizes): Pipe round trip of a small int with an echo child; 64 messages of
1 MiB child -> parent (send_bytes / recv_bytes, and send / recv of a bytes object); a
multiprocessing.Queue of 100 000 ints child -> parent; Manager dict sets from 5 processes.
One BENCH line per figure, median of 5 runs after a warm-up."""
import json
import multiprocessing as mp
import os
import statistics
import time

MIB = 1 << 20


def bench(name, unit, runs, f, per, params):
    f()
    values = sorted(per(f()) for _ in range(runs))
    print("BENCH " + json.dumps({"name": name, "unit": unit, "value": statistics.median(values),
                                 "params": dict(params, min=values[0], max=values[-1],
                                                runs=runs)}), flush=True)


def echo(conn, other):
    other.close()  # the parent's end: with a copy open here, EOF would never come
    while True:
        try:
            conn.send(conn.recv())
        except EOFError:
            return


def round_trip(n=10_000):
    def run():
        a, b = mp.Pipe()
        p = mp.Process(target=echo, args=(b, a))
        p.start()
        b.close()
        t = time.perf_counter()
        for i in range(n):
            a.send(i)
            a.recv()
        elapsed = time.perf_counter() - t
        a.close()
        p.join()
        return elapsed
    return run


def sender(conn, other, count, raw):
    other.close()
    data = b"\x07" * MIB
    for _ in range(count):
        conn.send_bytes(data) if raw else conn.send(data)
    conn.close()


def bulk(count, raw):
    def run():
        a, b = mp.Pipe()
        p = mp.Process(target=sender, args=(b, a, count, raw))
        p.start()
        b.close()
        t = time.perf_counter()
        for _ in range(count):
            a.recv_bytes() if raw else a.recv()
        elapsed = time.perf_counter() - t
        p.join()
        return elapsed
    return run


def producer(q, n):
    for i in range(n):
        q.put(i)


def queue_run(n=100_000):
    def run():
        q = mp.Queue()
        p = mp.Process(target=producer, args=(q, n))
        t = time.perf_counter()
        p.start()
        for _ in range(n):
            q.get()
        elapsed = time.perf_counter() - t
        p.join()
        return elapsed
    return run


def setter(d, base, n):
    for i in range(n):
        d[base + i] = i


def manager_run(manager, per=2_000, procs=5):
    def run():
        d = manager.dict()
        ps = [mp.Process(target=setter, args=(d, k * per, per)) for k in range(procs)]
        t = time.perf_counter()
        for p in ps:
            p.start()
        for p in ps:
            p.join()
        return time.perf_counter() - t
    return run


def main():
    mp.set_start_method("fork")
    n = 10_000
    bench("pipe_round_trip", "ns", 5, round_trip(n), lambda s: s / n * 1e9,
          {"pinned": "no", "via": "multiprocessing.Pipe"})
    for raw in (True, False):
        bench("pipe_bulk_send_bytes" if raw else "pipe_bulk_typed", "bytes/s", 5,
              bulk(64, raw), lambda s: 64 * MIB / s,
              {"message": "1 MiB", "via": "send_bytes" if raw else "send(bytes)"})
    bench("queue_child_to_parent", "msgs/s", 5, queue_run(), lambda s: 100_000 / s,
          {"message": "int", "via": "multiprocessing.Queue"})
    with mp.Manager() as m:
        bench("manager_dict_set", "ops/s", 5, manager_run(m), lambda s: 10_000 / s,
              {"processes": 5, "via": "multiprocessing.Manager"})
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
        bench("pipe_round_trip", "ns", 5, round_trip(n), lambda s: s / n * 1e9,
              {"pinned": "one core", "via": "multiprocessing.Pipe"})


if __name__ == "__main__":
    main()
