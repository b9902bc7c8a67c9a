#!/usr/bin/env python3
"""Helper for bench/e2e.sh (standard library only).

  e2e_tool.py latency URL SINK_PORT RATE SECONDS   fixed-rate webhooks + a recording sink
      (in a process of its own, so neither waits on the other at high rates): prints
      p50/p99/max from each webhook's 2xx to the sink receiving its step
  e2e_tool.py inflight SINK_PORT DELAY_MS SECONDS  a sink answering after DELAY_MS that
      reports the most requests it held open at once and how many it answered
"""
import asyncio
import json
import multiprocessing
import statistics
import sys
import time

received = {}        # run id -> monotonic time the sink got its step
open_now = 0
open_max = 0
answered = 0


async def sink(reader, writer, delay):
    global open_now, open_max, answered
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            now = time.monotonic()
            length = 0
            key = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                lname = name.strip().lower()
                if lname == b"content-length":
                    length = int(value.strip())
                elif lname == b"idempotency-key":
                    key = value.strip().decode()
            if length:
                await reader.readexactly(length)
            if key:
                received.setdefault(key.rsplit(":", 1)[0], now)
            open_now += 1
            open_max = max(open_max, open_now)
            if delay:
                await asyncio.sleep(delay)
            open_now -= 1
            answered += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError, BrokenPipeError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def sender(host, port, path, rate, seconds, acked, errors):
    body = json.dumps({"event": "e2e", "comment": {"email": "ada@example.com"}}).encode()
    req = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    conns = 32
    queue = asyncio.Queue()

    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            writer.write(req)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                n, _, v = line.partition(b":")
                if n.strip().lower() == b"content-length":
                    length = int(v.strip())
            payload = await reader.readexactly(length)
            now = time.monotonic()
            if head.startswith(b"HTTP/1.1 200"):
                acked[json.loads(payload)["runId"]] = now
            else:
                errors.append(head.split(b"\r\n")[0].decode())

    tasks = [asyncio.create_task(worker()) for _ in range(conns)]
    start = time.monotonic()
    total = int(rate * seconds)
    for i in range(total):
        target = start + i / rate
        delay = target - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(i)
    for _ in tasks:
        queue.put_nowait(None)
    await asyncio.gather(*tasks)
    return total, time.monotonic() - start


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def sink_process(sink_port, conn):
    """The recording sink, in a child process. Answers 'count' with how many runs it has seen
    and 'dump' with {run id: monotonic time} (CLOCK_MONOTONIC: the same clock in every process)."""
    async def serve():
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(lambda r, w: sink(r, w, 0), "127.0.0.1", sink_port, backlog=4096)
        conn.send("ready")
        while True:
            msg = await loop.run_in_executor(None, conn.recv)
            if msg == "count":
                conn.send(len(received))
            else:
                conn.send(dict(received))
                server.close()
                return
    asyncio.run(serve())


async def latency(url, sink_port, rate, seconds):
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=sink_process, args=(sink_port, child), daemon=True)
    proc.start()
    parent.recv()  # ready
    rest = url.split("://", 1)[1]
    hostport, path = rest.split("/", 1)
    host, port = hostport.split(":")
    acked, errors = {}, []
    total, took = await sender(host, int(port), "/" + path, rate, seconds, acked, errors)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        parent.send("count")
        if parent.recv() >= len(acked):
            break
        await asyncio.sleep(0.05)
    parent.send("dump")
    got = parent.recv()
    proc.join(5)
    lat = [(got[r] - t) * 1000 for r, t in acked.items() if r in got]
    done = len(lat)
    print(f"sent {total} webhooks in {took:.1f} s ({total / took:.0f}/s), {len(acked)} answered 200, "
          f"{len(errors)} other answers, {done} steps received by the sink")
    if lat:
        print(f"latency 2xx -> sink: p50 {statistics.median(lat):.2f} ms, p99 {pct(lat, 99):.2f} ms, "
              f"max {max(lat):.2f} ms")
    return 0 if done == len(acked) == total else 1


async def inflight(sink_port, delay_ms, seconds):
    server = await asyncio.start_server(lambda r, w: sink(r, w, delay_ms / 1000), "127.0.0.1", sink_port, backlog=4096)
    await asyncio.sleep(seconds)
    server.close()
    print(f"sink answering after {delay_ms} ms: at most {open_max} requests open at once, {answered} answered")
    return 0


def main():
    mode = sys.argv[1]
    if mode == "latency":
        sys.exit(asyncio.run(latency(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))))
    if mode == "inflight":
        sys.exit(asyncio.run(inflight(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))))
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
