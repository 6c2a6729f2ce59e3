#!/usr/bin/env python3
"""Where the daemon's CPU per accepted delivery goes, by thread and by what the work is.

Reads `perf script -F comm,tid,ip,sym` of a `perf record --call-graph dwarf` of the daemon (what
`BUDGET=1 bench/load/profile.sh` records) on stdin, and prints each bucket's share of the samples
and, given the CPU per accepted delivery the samples cover, its microseconds per delivery.

    budget.py US_PER_DELIVERY MAIN_THREAD_NAME < script.txt

A sample goes to the first bucket of its thread whose names appear anywhere in its call stack
(or to the thread's last bucket, the rest). The network threads are the daemon's main thread
(named after its binary) and hookrelay-io; the store thread is hookrelay-store (SQLite);
hookrelay-out sends the requests to Jenkins; hookrelay-pg is the PostgreSQL store's client.
The samples need call stacks, and kernel samples (perf_event_paranoid 1 or less, or root) for
the kernel's rows: without them, the kernel's CPU is spread over the other rows.
"""
import sys

# (thread, bucket, names in the stack); the order decides.
BUCKETS = [
    # Claims and outcomes first: those that commit on their own (run_queue_ops) count their
    # commit here; those that join a group of submits count their statements here and share the
    # group's commit, below.
    ("store", "claims and outcomes of the triggers delivered meanwhile",
     ["Queue::", "run_queue_ops"]),
    ("store", "submits: the deliveries' and triggers' inserts", ["Intake::insert"]),
    ("store", "submits' commits: WAL writes, fdatasync, checkpoints",
     ["sqlite3VdbeHalt", "after_wal_commit", "sqlite3WalFrames", "fdatasync",
      "sqlite3WalCheckpoint", "sqlite3_wal_checkpoint"]),
    ("store", "the rest: savepoints, answers, waiting for work", []),
    ("network", "verify: HMAC-SHA256 over the body", ["ingest::verify"]),
    ("network", "the body's SHA-256 (a body not kept; PostgreSQL)", ["sha256_hex"]),
    ("network", "parse the JSON payload", ["parse_body", "JsonDocument::parse"]),
    ("network", "normalize the event", ["ingest::normalize"]),
    ("network", "match the rules and render the triggers", ["RuleSet::evaluate"]),
    ("network", "compress the body (LZ4)", ["LZ4_compress"]),
    ("network", "the kernel: send the answer", ["sendmsg"]),
    ("network", "the kernel: receive the request", ["recvmsg", "readv", "sys_read"]),
    ("network", "the kernel: epoll, futexes, switching threads",
     ["epoll_wait", "do_futex", "__schedule", "finish_task_switch"]),
    ("network", "the rest: HTTP parsing and writing, Asio, allocation, hops, metrics", []),
    ("out", "requests to Jenkins (the whole thread)", []),
    ("postgres", "the PostgreSQL client thread (the server's CPU is not in these samples)", []),
    ("other", "other threads", []),
]


def samples(stream):
    current = None
    for line in stream:
        if not line.strip():
            if current:
                yield current
            current = None
        elif line[0] not in " \t":
            current = [line.split()[0]]
        elif current is not None:
            parts = line.strip().split(None, 1)
            current.append(parts[1] if len(parts) > 1 else parts[0])
    if current:
        yield current


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    us_per_delivery = float(sys.argv[1])
    main_thread = sys.argv[2][:15]  # a thread name is at most 15 characters
    threads = {"hookrelay-store": "store", "hookrelay-out": "out", "hookrelay-pg": "postgres",
               "hookrelay-io": "network", main_thread: "network"}
    counts = [0] * len(BUCKETS)
    total = 0
    for sample in samples(sys.stdin):
        total += 1
        thread = threads.get(sample[0], "other")
        stack = sample[1:]
        for i, (owner, _, names) in enumerate(BUCKETS):
            if owner != thread:
                continue
            if not names or any(name in frame for name in names for frame in stack):
                counts[i] += 1
                break
    if total == 0:
        sys.exit("budget.py: no samples")
    sums = {}
    print(f"  {'thread':8} {'what':70} {'samples':>8} {'µs/delivery':>12}")
    for (owner, what, _), n in zip(BUCKETS, counts):
        sums[owner] = sums.get(owner, 0) + n
        if n:
            print(f"  {owner:8} {what:70} {100 * n / total:7.1f}% {us_per_delivery * n / total:12.1f}")
    for owner, n in sums.items():
        if n:
            print(f"  {owner:8} {'(all of it)':70} {100 * n / total:7.1f}% {us_per_delivery * n / total:12.1f}")


if __name__ == "__main__":
    main()
