#!/usr/bin/env bash
# Run the coroutines crate's test binaries under valgrind memcheck and fail on any error it
# reports: an invalid read or write (a stack or greenlet used after it was freed), a jump on
# uninitialised memory, an invalid free.
#
# - corosensei registers every coroutine stack it maps with valgrind (VALGRIND_STACK_REGISTER,
#   in its stack/valgrind.rs), so memcheck follows the switches between stacks; nothing to add.
# - --trace-children=yes: the tests that may crash run their body in a child process (a re-run
#   of the same test binary), and those children are checked too; memcheck's exit code 99 in a
#   child fails its test in the parent.
# - Leaks are not memcheck errors here: the tests count drops instead (every greenlet function
#   and every value switched, in tests/model.rs), because one tested path leaks by a known Rust
#   bug (rust-lang/rust#47949: a value being returned is not dropped when a destructor run
#   during the return unwinds; a greenlet killed while returning from its GreenletExit, which
#   switches from a destructor and is then unwound, leaks its 32-byte error so).
# - Left out: tests/cli.rs (it runs the chapter binary, which the other tests cover through the
#   library), tests/map_limit.rs (it maps 65 530 stacks to reach the kernel's limit: slow
#   under valgrind, and about the kernel, not memory safety) and tests/not_send.rs (it runs
#   rustc on a snippet: the compiler's memory, not ours).
#
# Usage: coroutines/memcheck.sh (extra valgrind options in MEMCHECK_OPTIONS; the loop itself is
# .ci/memcheck-run)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null; then
    echo "memcheck: valgrind is not installed (apt-get install valgrind)" >&2
    exit 2
fi

echo "== building the coroutines test binaries"
mapfile -t binaries < <(
    cargo test -p coroutines --no-run --message-format=json 2>/dev/null |
        grep '"test":true' |
        grep -o '"executable":"[^"]*"' |
        sed 's/^"executable":"//; s/"$//' |
        grep '/deps/' |
        grep -v -e '/cli-' -e '/map_limit-' -e '/not_send-'
)
if [ "${#binaries[@]}" -eq 0 ]; then
    echo "memcheck: no test binaries found" >&2
    exit 2
fi

# The tests' child processes get more time: under valgrind they run some thirty times slower.
export COROUTINES_TEST_CHILD_DEADLINE=1200

exec .ci/memcheck-run "${binaries[@]}"
