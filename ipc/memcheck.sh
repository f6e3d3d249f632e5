#!/usr/bin/env bash
# Run the ipc tests that drive its large-frame reader under valgrind memcheck, and fail on any
# error memcheck reports. That reader (src/frame/tail.rs) has the chapter's one block of unsafe
# code outside shared memory and futexes: it reads from a socket into a Vec's spare capacity and
# then sets the Vec's length. A read past the capacity, or a length set past what the kernel
# wrote, is an invalid write or a use of uninitialised memory here.
#
# - tests/bulk.rs: every byte of 1 MiB-class messages over edge and random sizes, through a
#   small socket buffer, cut short, with a receive time-out mid-string (about 40 s here).
# - tests/frame_fuzz.rs: huge claims and damaged 64-100 KiB frames through the same path, in
#   child processes (--trace-children=yes checks them too; about 3 minutes here).
# Leaks are not errors here (the fuzz children exit without freeing).
#
# Usage: ipc/memcheck.sh (extra valgrind options in MEMCHECK_OPTIONS; the loop itself is
# .ci/memcheck-run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

mapfile -t binaries < <(
    cargo test -p ipc --test bulk --test frame_fuzz --no-run --message-format=json 2>/dev/null |
        grep '"test":true' |
        grep -o '"executable":"[^"]*"' |
        sed 's/^"executable":"//; s/"$//' |
        grep '/deps/'
)
if [ "${#binaries[@]}" -ne 2 ]; then
    echo "memcheck: expected the bulk and frame_fuzz test binaries, found ${#binaries[@]}" >&2
    exit 2
fi

exec .ci/memcheck-run "${binaries[@]}"
