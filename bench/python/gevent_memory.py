"""Resident memory with 10 000 sleeping gevent greenlets alive at once, written for this
workspace as the counterpart of the coroutines chapter's `hub_10000_sleeping_tasks_rss`.
Needs `python3 -m pip install gevent`. One BENCH line (MiB above the starting RSS)."""
import json

import gevent


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    before = rss_kib()
    peak = [0]

    def watcher():
        gevent.sleep(0.1)
        peak[0] = rss_kib()

    tasks = [gevent.spawn(gevent.sleep, 0.2) for _ in range(10_000)]
    tasks.append(gevent.spawn(watcher))
    gevent.joinall(tasks)
    print("BENCH " + json.dumps({"name": "hub_10000_sleeping_tasks_rss", "unit": "MiB",
                                 "value": (peak[0] - before) / 1024,
                                 "params": {"tasks": 10_000, "via": "gevent"}}))


if __name__ == "__main__":
    main()
