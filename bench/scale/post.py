#!/usr/bin/env python3
"""Signed GitHub push webhooks POSTed back to back to hookrelay on one kept-alive connection, for
bench/scale/run.sh: one line per webhook, the seconds from sending it until its answer and the
wall-clock time it was sent (seconds since the epoch).

    post.py PORT SIGNATURE BODY_FILE OUT_FILE PREFIX --count N
    post.py PORT SIGNATURE BODY_FILE OUT_FILE PREFIX --until STOP_FILE [--limit SECONDS]

Each webhook has a delivery id of its own (PREFIX-0, PREFIX-1, ...). --until posts until
STOP_FILE exists, and at most --limit seconds (default 1800). Loopback only. Exits 1 on an answer
other than 202, naming it; the latencies measured until then are written either way.
"""
import argparse
import http.client
import os
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("signature")
    parser.add_argument("body")
    parser.add_argument("out")
    parser.add_argument("prefix")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--count", type=int)
    group.add_argument("--until")
    parser.add_argument("--limit", type=float, default=1800.0)
    args = parser.parse_args()

    with open(args.body, "rb") as f:
        body = f.read()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-Hub-Signature-256": args.signature,
    }
    connection = http.client.HTTPConnection("127.0.0.1", args.port, timeout=60)
    latencies = []
    status = 0
    deadline = time.monotonic() + args.limit
    try:
        while True:
            if args.count is not None and len(latencies) >= args.count:
                break
            if args.until is not None and (
                os.path.exists(args.until) or time.monotonic() >= deadline
            ):
                break
            headers["X-GitHub-Delivery"] = f"{args.prefix}-{len(latencies)}"
            sent = time.time()
            start = time.monotonic()
            connection.request("POST", "/hooks/github", body, headers)
            response = connection.getresponse()
            answer = response.read()
            latencies.append((time.monotonic() - start, sent))
            if response.status != 202:
                status = response.status
                print(f"POST answered {status}: {answer[:300]!r}", file=sys.stderr)
                break
    finally:
        with open(args.out, "w") as f:
            f.writelines(f"{t:.6f} {at:.6f}\n" for t, at in latencies)
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
