"""The greenlet figures, Python side, written for this workspace as the counterparts of the
coroutines chapter's bench: a switch (main -> greenlet -> main counts as two). Needs
`python3 -m pip install greenlet`. One BENCH line, median of 7 runs after a warm-up."""
import json
import statistics
import time

from greenlet import greenlet, getcurrent

ROUNDS = 200_000


def main():
    def body(_):
        parent = getcurrent().parent
        while True:
            parent.switch()

    g = greenlet(body)

    def run():
        t = time.perf_counter()
        for _ in range(ROUNDS):
            g.switch(None)
        return (time.perf_counter() - t) / (2 * ROUNDS) * 1e9

    run()
    per = sorted(run() for _ in range(7))
    print("BENCH " + json.dumps({"name": "greenlet_switch", "unit": "ns",
                                 "value": statistics.median(per),
                                 "params": {"via": "greenlet", "min": per[0], "max": per[-1],
                                            "runs": 7}}))


if __name__ == "__main__":
    main()
