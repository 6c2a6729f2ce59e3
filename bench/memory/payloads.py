#!/usr/bin/env python3
"""Writes the two payloads the memory measurements use (bench/memory/run.sh, docs/operations.md
"Memory ceilings").

  payloads.py small-elements SIZE OUT     {"a":[0,0,...]} of exactly SIZE bytes: the JSON whose
                                          parsed form is largest per body byte
  payloads.py github-push-max SIZE OUT    a GitHub push as GitHub sends it at its limits: 2,048
                                          commits (GitHub's cap) x 450 distinct file paths each,
                                          the paths as long as fit in SIZE bytes (GitHub's own
                                          payload cap is 25 MB)

Built from tests/data/github/push-branch-update.json (the real fixture), so every field a real
push carries is there, at the size a real push has.
"""
import json
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
COMMITS = 2048
FILES_PER_COMMIT = 450


def small_elements(size):
    head, tail = b'{"a":[', b"]}"
    count = (size - len(head) - len(tail) + 1) // 2
    body = head + b",".join([b"0"] * count) + tail
    # Pad with spaces (insignificant whitespace) to the exact size.
    return body[:-2] + b" " * (size - len(body)) + tail


def github_push(size):
    with open(os.path.join(ROOT, "tests/data/github/push-branch-update.json"), "rb") as f:
        base = json.load(f)
    template = base["commits"][0]

    def build(path_len):
        commits = []
        for c in range(COMMITS):
            commit = dict(template)
            sha = "%040x" % (0x366701FDE727CB7A9E7F21EB88264F59F6F9B89C + c)
            commit["id"] = sha
            commit["url"] = template["url"].rsplit("/", 1)[0] + "/" + sha
            paths = []
            for i in range(FILES_PER_COMMIT):
                stem = "src/c%04d/f%03d_" % (c, i)
                paths.append(stem + "x" * max(path_len - len(stem) - 3, 1) + ".go")
            commit["added"] = paths[:150]
            commit["removed"] = paths[150:300]
            commit["modified"] = paths[300:]
            commits.append(commit)
        push = dict(base)
        push["commits"] = commits
        push["head_commit"] = commits[-1]
        push["after"] = commits[-1]["id"]
        return json.dumps(push, separators=(",", ":")).encode()

    # The size grows by the same number of bytes per character of path length.
    short, longer = build(20), build(21)
    if len(short) > size:
        sys.exit("%d bytes cannot hold %d x %d paths" % (size, COMMITS, FILES_PER_COMMIT))
    best = build(20 + (size - len(short)) // (len(longer) - len(short)))
    assert len(best) <= size
    return best


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("small-elements", "github-push-max"):
        sys.exit(__doc__)
    kind, size, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    body = small_elements(size) if kind == "small-elements" else github_push(size)
    with open(out, "wb") as f:
        f.write(body)
    print("%s: %d bytes" % (out, len(body)))


if __name__ == "__main__":
    main()
