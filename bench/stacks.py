#!/usr/bin/env python3
"""Where a profile's time goes, per thread and per function (docs/BENCHMARKS.md).

usage: bench/stacks.py PERF_DATA [FUNCTION ...] [--thread TID]

PERF_DATA is a `perf record -g` file, e.g. from `PERF=FILE PERF_CG=dwarf,16384 bench/ingest.sh 10`
or `SECTIONS=2 PERF=FILE PERF_CG=dwarf,16384 bench/e2e.sh 5`. It prints:
  - each thread's share of the samples, named by the outermost zapd function on its stacks
    (the threads are not named: the writer shows as zapd::store::writer::run, and so on);
  - for each FUNCTION (a substring of a symbol, e.g. zapd::runs::record_attempt or
    curl_multi_socket_action): the share of all samples whose stack holds it ("inclusive"),
    and the callees it spends that share in.
With --thread TID the shares are of that thread's samples only.
"""
import argparse
import collections
import re
import subprocess
import sys

FRAME = re.compile(r"^\s*[0-9a-f]+ (.*)$")


def samples(path):
    """Yields (tid, [frame names, innermost first]) from `perf script`.

    A sample is a header line (the thread id, right-aligned: it may start with spaces), then
    one line per frame starting with a tab, then a blank line. A sample recorded without a
    call chain has its address and symbol on the header line instead.
    """
    proc = subprocess.Popen(["perf", "script", "-i", path, "-F", "tid,ip,sym", "--no-inline"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    tid, frames = None, []
    for line in proc.stdout:
        if not line.strip():
            if tid is not None:
                yield tid, frames
            tid, frames = None, []
        elif line.startswith("\t"):
            m = FRAME.match(line)
            frames.append(m.group(1) if m else line.strip())
        else:
            fields = line.split(None, 2)
            tid = fields[0]
            if len(fields) == 3:
                frames.append(fields[2].strip())
    if tid is not None:
        yield tid, frames
    if proc.wait() != 0:
        sys.exit(f"stacks.py: perf script failed on {path}: {proc.stderr.read().strip()}")


ZAPD_FRAME = re.compile(r"^(\S+ )?zapd::")  # a zapd function, also after a return type


def thread_name(counter):
    """The outermost zapd function most of a thread's samples run under."""
    return counter.most_common(1)[0][0] if counter else "(no zapd frame)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("perf_data")
    ap.add_argument("functions", nargs="*")
    ap.add_argument("--thread")
    ap.add_argument("--callees", type=int, default=8, help="callees listed per function (default 8)")
    args = ap.parse_intermixed_args()

    per_thread = collections.Counter()
    names = collections.defaultdict(collections.Counter)
    hits = collections.Counter()
    callees = collections.defaultdict(collections.Counter)
    total = 0
    for tid, frames in samples(args.perf_data):
        per_thread[tid] += 1
        outer = [f for f in frames if ZAPD_FRAME.match(f) and "lambda" not in f]
        if outer:
            names[tid][outer[-1][:90]] += 1
        if args.thread and tid != args.thread:
            continue
        total += 1
        for fn in args.functions:
            for i, f in enumerate(frames):
                if fn in f:
                    hits[fn] += 1
                    callees[fn][(frames[i - 1] if i > 0 else "(self)")[:110]] += 1
                    break
    if not per_thread:
        sys.exit(f"stacks.py: no samples in {args.perf_data}")

    all_samples = sum(per_thread.values())
    print(f"{all_samples} samples; threads by share:")
    for tid, n in per_thread.most_common():
        if n * 200 < all_samples:  # under 0.5 %
            continue
        print(f"  {100 * n / all_samples:5.1f} %  {tid:>8}  {thread_name(names[tid])}")
    scope = f"thread {args.thread}'s" if args.thread else "all"
    for fn in args.functions:
        share = 100 * hits[fn] / max(total, 1)
        print(f"\n{fn}: {share:.1f} % of {scope} samples (inclusive); callees:")
        for callee, n in callees[fn].most_common(args.callees):
            print(f"  {100 * n / max(total, 1):5.1f} %  {callee}")


if __name__ == "__main__":
    main()
