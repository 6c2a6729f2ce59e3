#!/usr/bin/env python3
"""Which b-trees the frames of a SQLite WAL belong to.

Usage: wal_pages.py DATABASE WAL SNAPSHOT...

SNAPSHOT files are copies of one database's WAL taken at different times. Every valid frame of
every copy is counted once (a WAL restarts after a checkpoint with new salts, so a frame is
known by the header's salts and its place). Pages are mapped to their table or index with
SQLite's dbstat table, on a copy of DATABASE with WAL as its write-ahead log.
"""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def commits_of(path):
    """The commits of one WAL copy: {(salt1, salt2, index of the commit frame): [page numbers]}."""
    data = open(path, 'rb').read()
    out = {}
    if len(data) < 32:
        return out
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack('>8I', data[:32])
    offset, index, pages = 32, 0, []
    while offset + 24 + page_size <= len(data):
        page, db_size, frame_salt1, frame_salt2 = struct.unpack('>4I', data[offset:offset + 16])
        if (frame_salt1, frame_salt2) != (salt1, salt2):
            break
        pages.append(page)
        if db_size:
            out[(salt1, salt2, index)] = pages
            pages = []
        offset += 24 + page_size
        index += 1
    return out


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    database, wal, snapshots = sys.argv[1], sys.argv[2], sys.argv[3:]
    commits = {}
    for snapshot in snapshots:
        commits.update(commits_of(snapshot))
    if not commits:
        sys.exit('no commit in the snapshots')
    with tempfile.TemporaryDirectory() as tmp:
        copy = os.path.join(tmp, 'copy.db')
        shutil.copy(database, copy)
        shutil.copy(wal, copy + '-wal')
        db = sqlite3.connect(copy)
        owner = {page: name for name, page in db.execute('SELECT name, pageno FROM dbstat')}
        db.close()
    # Commits that wrote a page of the deliveries table inserted deliveries (submits); the rest
    # are queue operations (claims, outcomes) and housekeeping that committed alone.
    groups = {'commits that insert deliveries': [], 'the other commits': []}
    for pages in commits.values():
        submit = any(owner.get(p) == 'deliveries' for p in pages)
        groups['commits that insert deliveries' if submit else 'the other commits'].append(pages)
    frames = sum(len(p) for p in commits.values())
    print(f'{frames} frames in {len(commits)} commits')
    for label, group in groups.items():
        if not group:
            continue
        count = collections.Counter(owner.get(p, '(a page new since)') for g in group for p in g)
        total = sum(count.values())
        print(f'\n{label}: {len(group)}, {total / len(group):.1f} pages each')
        for name, n in count.most_common():
            print(f'  {n / len(group):6.2f}  {100 * n / total:4.0f} %  {name}')


if __name__ == '__main__':
    main()
