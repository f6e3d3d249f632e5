//! Every figure of the report: which line it takes from each side, its floor and its targets.

use super::{Figure, RUST_RUN, Target, sel};

/// Every figure, in chapter order.
pub const FIGURES: &[Figure] = &[
    Figure {
        label: "thread start+join (1000)",
        chapter: "threads",
        rust: sel("thread_spawn_join_1000", &[]),
        python: Some(("threads.py", sel("thread_spawn_join_1000", &[]))),
        floor: Some(sel("thread_spawn_join_1000_raw", &[])),
        targets: &[Target::VsFloor(1.2)],
    },
    Figure {
        label: "GIL: CPU-bound speedup, 2 threads",
        chapter: "threads",
        rust: sel("gil_speedup", &[("threads", "2")]),
        python: Some(("gil.py", sel("gil_speedup", &[("threads", "2")]))),
        floor: None,
        targets: &[Target::PerThread(0.9)],
    },
    Figure {
        label: "locked counter, 4 threads",
        chapter: "sync",
        rust: sel("locked_counter", &[]),
        python: Some(("locked_counter.py", sel("locked_counter", &[]))),
        // Not a floor but the comparison: the same counter under parking_lot's Mutex, in
        // alternation with std's (the lesson's lock) in the same run.
        floor: Some(sel("locked_counter_parking_lot", &[])),
        targets: &[Target::VsPython(4.0)],
    },
    Figure {
        label: "Semaphore acquire+release",
        chapter: "sync",
        rust: sel("semaphore_acquire_release", &[("contended", "no")]),
        python: Some(("sync.py", sel("semaphore_acquire_release", &[]))),
        floor: Some(sel("mutex_lock_unlock", &[])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "Event set -> wake, one core",
        chapter: "sync",
        rust: sel("event_set_to_wake", &[("pinned", "one core")]),
        python: Some((
            "event.py",
            sel("event_set_to_wake", &[("pinned", "one core")]),
        )),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Event set -> wake, unpinned",
        chapter: "sync",
        rust: sel("event_set_to_wake", &[("pinned", "no")]),
        python: Some(("event.py", sel("event_set_to_wake", &[("pinned", "no")]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Queue FIFO 1P1C, maxsize 1000",
        chapter: "queues",
        rust: sel("queue_1p1c_fifo", &[("maxsize", "1000")]),
        python: Some((
            "queue_throughput.py",
            sel("queue_1p1c_fifo", &[("maxsize", "1000")]),
        )),
        floor: Some(sel("queue_1p1c_crossbeam", &[("maxsize", "1000")])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "Queue FIFO 1P1C, maxsize 3",
        chapter: "queues",
        rust: sel("queue_1p1c_fifo", &[("maxsize", "3")]),
        python: Some((
            "queue_throughput.py",
            sel("queue_1p1c_fifo", &[("maxsize", "3")]),
        )),
        floor: Some(sel("queue_1p1c_crossbeam", &[("maxsize", "3")])),
        targets: &[Target::VsFloor(2.0)],
    },
    Figure {
        label: "LifoQueue 1P1C",
        chapter: "queues",
        rust: sel("queue_1p1c_lifo", &[]),
        python: Some(("queue_throughput.py", sel("queue_1p1c_lifo", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "PriorityQueue 1P1C",
        chapter: "queues",
        rust: sel("queue_1p1c_priority", &[]),
        python: Some(("queue_throughput.py", sel("queue_1p1c_priority", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Queue put+get, one thread (no waiting)",
        chapter: "queues",
        rust: sel("queue_put_get_one_thread", &[]),
        python: None,
        floor: Some(sel("queue_put_get_one_thread_crossbeam", &[])),
        targets: &[],
    },
    Figure {
        label: "Process start+join, fork (1000 started, then joined)",
        chapter: "processes",
        rust: sel(
            "process_start_join",
            &[("pattern", "1000 started, then joined")],
        ),
        python: Some((
            "process_start.py",
            sel("process_start_join", &[("method", "fork")]),
        )),
        floor: Some(sel(
            "process_start_join_raw",
            &[("pattern", "1000 started, then joined")],
        )),
        targets: &[Target::VsFloor(1.5), Target::VsPython(8.0)],
    },
    Figure {
        label: "Process start+join, spawn",
        chapter: "processes",
        rust: sel("process_spawn_start_join", &[]),
        python: Some(("process_start.py", sel("process_spawn_start_join", &[]))),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Process start+join, forkserver",
        chapter: "processes",
        rust: sel("process_forkserver_start_join", &[]),
        python: Some((
            "process_start.py",
            sel("process_forkserver_start_join", &[]),
        )),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "Connection round trip, one core",
        chapter: "ipc",
        rust: sel("pipe_round_trip", &[("pinned", "one core")]),
        python: Some(("ipc.py", sel("pipe_round_trip", &[("pinned", "one core")]))),
        floor: Some(sel("pipe_round_trip_raw", &[("pinned", "one core")])),
        targets: &[Target::VsFloor(1.5)],
    },
    Figure {
        label: "Connection round trip, unpinned",
        chapter: "ipc",
        rust: sel("pipe_round_trip", &[("pinned", "no")]),
        python: Some(("ipc.py", sel("pipe_round_trip", &[("pinned", "no")]))),
        floor: Some(sel("pipe_round_trip_raw", &[("pinned", "no")])),
        targets: &[Target::VsFloor(1.5)],
    },
    Figure {
        label: "Connection bulk, 1 MiB messages (typed)",
        chapter: "ipc",
        rust: sel("pipe_bulk_typed", &[]),
        python: Some(("ipc.py", sel("pipe_bulk_typed", &[]))),
        floor: Some(sel("pipe_bulk_raw", &[])),
        targets: &[Target::VsFloor(1.43), Target::VsPython(2.5)],
    },
    Figure {
        label: "Connection bulk, 1 MiB messages (send_bytes)",
        chapter: "ipc",
        rust: sel("pipe_bulk_send_bytes", &[]),
        python: Some(("ipc.py", sel("pipe_bulk_send_bytes", &[]))),
        floor: Some(sel("pipe_bulk_raw", &[])),
        targets: &[Target::VsFloor(1.43), Target::VsPython(2.5)],
    },
    Figure {
        label: "ipc Queue, child -> parent",
        chapter: "ipc",
        rust: sel("queue_child_to_parent", &[]),
        python: Some(("ipc.py", sel("queue_child_to_parent", &[]))),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Manager dict sets, 5 processes",
        chapter: "ipc",
        rust: sel("manager_dict_set", &[]),
        python: Some(("ipc.py", sel("manager_dict_set", &[]))),
        // A bare poll server over socketpairs, the same exchange with nothing else.
        floor: Some(sel("manager_dict_set_raw", &[])),
        // Issue 15: the 5x Python target is retired (the bare server itself does 2.9-4.4x
        // Python here); the Manager must keep up with that floor.
        targets: &[Target::VsFloor(1.0)],
    },
    Figure {
        label: "ipc Event set -> wake, two processes, one core",
        chapter: "ipc",
        rust: sel("ipc_event_set_to_wake", &[("pinned", "one core")]),
        python: Some((
            "ipc_event.py",
            sel("ipc_event_set_to_wake", &[("pinned", "one core")]),
        )),
        floor: None,
        targets: &[Target::VsPython(3.0)],
    },
    Figure {
        label: "ipc Event set -> wake, two processes, unpinned",
        chapter: "ipc",
        rust: sel("ipc_event_set_to_wake", &[("pinned", "no")]),
        python: Some((
            "ipc_event.py",
            sel("ipc_event_set_to_wake", &[("pinned", "no")]),
        )),
        floor: None,
        targets: &[Target::VsPython(3.0)],
    },
    Figure {
        label: "Pool apply_async + callback, Pool(2)",
        chapter: "pool",
        rust: sel("pool_apply_async_callback", &[("processes", "2")]),
        python: Some((
            "pool.py",
            sel("pool_apply_async_callback", &[("processes", "2")]),
        )),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Pool apply_async + callback, Pool(5)",
        chapter: "pool",
        rust: sel("pool_apply_async_callback", &[("processes", "5")]),
        python: Some((
            "pool.py",
            sel("pool_apply_async_callback", &[("processes", "5")]),
        )),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "Pool map, default chunks",
        chapter: "pool",
        rust: sel("pool_map", &[("processes", "2"), ("chunking", "default")]),
        python: Some(("pool.py", sel("pool_map", &[]))),
        floor: None,
        targets: &[],
    },
    Figure {
        label: "ThreadPoolExecutor submit + result round trip",
        chapter: "pool",
        rust: sel("futures_submit_result_round_trip", &[]),
        python: Some(("futures.py", sel("futures_submit_result_round_trip", &[]))),
        // A thread ping-pong over crossbeam channels, nothing else.
        floor: Some(sel("futures_round_trip_raw", &[])),
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "ThreadPoolExecutor: 10 000 submits, as_completed",
        chapter: "pool",
        rust: sel("futures_as_completed", &[]),
        python: Some(("futures.py", sel("futures_as_completed", &[]))),
        floor: None,
        targets: &[Target::VsPython(10.0)],
    },
    Figure {
        label: "greenlet switch",
        chapter: "coroutines",
        rust: sel("greenlet_switch", &[]),
        python: Some(("greenlet_switch.py", sel("greenlet_switch", &[]))),
        floor: Some(sel("corosensei_switch_raw", &[])),
        targets: &[Target::VsFloor(2.5), Target::VsPython(50.0)],
    },
    Figure {
        label: "hub echo, 1000 connections",
        chapter: "coroutines",
        rust: sel("hub_echo_round_trips", &[]),
        // gevent's server is driven by the Rust bench's own client, so its line comes from
        // the Rust run (see RUST_RUN).
        python: Some((RUST_RUN, sel("hub_echo_round_trips_gevent", &[]))),
        floor: Some(sel("hub_echo_round_trips_raw", &[])),
        // Issue 14: floor-relative only (the raw epoll loop itself is only ~2.5x gevent here).
        targets: &[Target::VsFloor(1.5)],
    },
    Figure {
        // What each server itself spends per round trip (the round trips per second are
        // capped by the one client's core); the kernel's TCP work is most of the floor.
        label: "hub echo, server CPU per round trip",
        chapter: "coroutines",
        rust: sel("hub_echo_server_cpu", &[]),
        python: Some((RUST_RUN, sel("hub_echo_server_cpu_gevent", &[]))),
        floor: Some(sel("hub_echo_server_cpu_raw", &[])),
        targets: &[],
    },
    Figure {
        label: "10 000 sleeping greenlets, RSS",
        chapter: "coroutines",
        rust: sel("hub_10000_sleeping_tasks_rss", &[]),
        python: Some(("gevent_memory.py", sel("hub_10000_sleeping_tasks_rss", &[]))),
        floor: None,
        targets: &[Target::VsPython(1.0)],
    },
];

/// Python scripts that need more than the standard library.
pub fn script_needs(script: &str) -> &'static [&'static str] {
    match script {
        "greenlet_switch.py" => &["greenlet"],
        "gevent_memory.py" => &["gevent"],
        _ => &[],
    }
}

/// What `cargo xtask bench --counts` runs under callgrind: single-threaded bench groups
/// (chapter, groups), whose figures then get instructions per operation. A chapter adds its
/// own here once its bench measures them with `lesson::bench::measure_counted` (or
/// `measure_pair_counted`); a multi-threaded group does not belong here (valgrind runs one
/// thread at a time, and the count would be of its scheduling).
pub const CALLGRIND: &[(&str, &[&str])] = &[
    ("sync", &["semaphore_uncontended"]),
    ("queues", &["one_thread"]),
    ("coroutines", &["switch"]),
];
