"""Userspace TCP proxy that emulates a slow, lossy WAN link (tc netem is not available here).

    python3 Tests/Clients/wan_link.py --upstream HOST:PORT [--listen HOST:PORT] [--latency-ms 50]
        [--mbps 50] [--reset-mean-mb 0] [--seed 1] [--stats-file FILE]

Prints `listening on HOST:PORT` once ready. Every chunk gets a one-way delay in each direction;
each direction is one pipe of `--mbps` shared by all connections. With `--reset-mean-mb`,
connections are reset (TCP RST) after an exponentially distributed number of uploaded bytes.
SIGUSR1 takes the link down (RST everything), SIGUSR2 brings it up, SIGTERM/SIGINT exit 0.
Python standard library only.

Limits: up to MAX_QUEUED bytes wait per connection and direction, which behaves like a deep
router buffer (about 0.64 s at 50 Mbit/s): a small request beside a bulk upload waits that
long, and with --mbps 0 the buffer, not the wire, bounds throughput.
"""
import argparse
import asyncio
import collections
import json
import os
import random
import signal
import socket
import struct

CHUNK = 64 * 1024               # large reads keep per-chunk Python overhead low at 50 Mbit/s
MAX_QUEUED = 4 * 1000 * 1000    # per connection and direction; reading pauses beyond this
LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER (on, 0 s): close() sends RST instead of FIN


class Pipe:
    """One direction of the link: chunks are serialised one after another, then delayed."""

    def __init__(self, mbps, latency_ms):
        self.bytes_per_s = mbps * 1e6 / 8
        self.latency = latency_ms / 1000
        self.free_at = 0.0

    def schedule(self, now, n):
        # The chunk starts when the pipe is free, occupies it for its serialisation time and
        # arrives one latency later. Later chunks may be read while this one is in flight, so a
        # long transfer runs at the cap rather than paying the latency per chunk.
        start = max(now, self.free_at)
        if self.bytes_per_s and n:
            self.free_at = start + n / self.bytes_per_s
            start = self.free_at
        return start + self.latency


class Link:
    """Global state: the two pipes, the reset draw, the set of live connections, the stats."""

    def __init__(self, args):
        self.up_pipe = Pipe(args.mbps, args.latency_ms)
        self.down_pipe = Pipe(args.mbps, args.latency_ms)
        self.rng = random.Random(args.seed)
        self.reset_mean = args.reset_mean_mb * 1e6
        self.counted = 0                   # client->upstream bytes seen by the reset logic
        self.threshold = self.next_threshold()
        self.conns = set()
        self.is_down = False
        self.stats = {"bytes_up": 0, "bytes_down": 0, "connections": 0, "resets": 0}

    def next_threshold(self):
        if self.reset_mean <= 0:
            return float("inf")
        return self.counted + self.rng.expovariate(1 / self.reset_mean)

    def should_reset(self, n):
        """Counts n uploaded bytes; True if they cross the current reset threshold."""
        self.counted += n
        if self.counted < self.threshold:
            return False
        self.stats["resets"] += 1
        self.threshold = self.next_threshold()
        return True

    def snapshot(self):
        return dict(self.stats, down=self.is_down)


def abort_with_rst(writer):
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
    except OSError:
        pass
    writer.transport.abort()


class Connection:
    """One client connection and its upstream connection: a reader and a writer per direction,
    joined by a queue of (deliver_at, bytes or None for EOF)."""

    def __init__(self, link, client_reader, client_writer):
        self.link = link
        self.client = (client_reader, client_writer)
        self.upstream = None
        self.tasks = []
        self.closed = False
        self.finished = 0

    async def run(self, host, port):
        try:
            self.upstream = await asyncio.open_connection(host, port)
        except OSError:
            self.abort()          # upstream refused or unreachable: RST the client at once
            return
        if self.closed:           # link went down while we were connecting
            abort_with_rst(self.upstream[1])
            return
        self.start_direction(self.client[0], self.upstream[1], self.link.up_pipe, True)
        self.start_direction(self.upstream[0], self.client[1], self.link.down_pipe, False)

    def start_direction(self, reader, writer, pipe, is_up):
        queue = collections.deque()
        state = {"queued": 0, "room": asyncio.Event(), "data": asyncio.Event()}
        self.tasks.append(asyncio.create_task(self.read_side(reader, pipe, queue, state)))
        self.tasks.append(asyncio.create_task(self.write_side(writer, is_up, queue, state)))

    async def read_side(self, reader, pipe, queue, state):
        loop = asyncio.get_running_loop()
        try:
            while True:
                while state["queued"] > MAX_QUEUED:
                    state["room"].clear()
                    await state["room"].wait()   # back-pressure: the source's TCP window fills
                data = await reader.read(CHUNK)
                queue.append((pipe.schedule(loop.time(), len(data)), data or None))
                state["queued"] += len(data)
                state["data"].set()
                if not data:
                    return
        except (OSError, asyncio.IncompleteReadError):
            self.abort()          # a reset on one side is passed on as a reset to the other

    async def write_side(self, writer, is_up, queue, state):
        loop = asyncio.get_running_loop()
        stats = self.link.stats
        try:
            while True:
                if not queue:
                    state["data"].clear()
                    await state["data"].wait()
                    continue
                deliver_at, data = queue[0]
                delay = deliver_at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                queue.popleft()
                if data is None:             # source sent FIN: half-close the destination
                    if writer.can_write_eof():
                        writer.write_eof()
                    break
                state["queued"] -= len(data)
                state["room"].set()
                if is_up and self.link.should_reset(len(data)):
                    self.abort()
                    return
                writer.write(data)
                stats["bytes_up" if is_up else "bytes_down"] += len(data)
                await writer.drain()
        except OSError:
            self.abort()
            return
        self.finished += 1
        if self.finished == 2:               # both directions saw EOF: close cleanly (FIN)
            self.close()

    def close(self):
        if not self.closed:
            self.closed = True
            self.link.conns.discard(self)
            for _, writer in filter(None, (self.client, self.upstream)):
                writer.close()

    def abort(self):
        if self.closed:
            return
        self.closed = True
        self.link.conns.discard(self)
        for _, writer in filter(None, (self.client, self.upstream)):
            abort_with_rst(writer)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()


def host_port(text):
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


def write_stats(path, link):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(link.snapshot(), f)
    os.replace(tmp, path)     # atomic: readers never see a half-written file


async def main(args):
    loop = asyncio.get_running_loop()
    link = Link(args)
    up_host, up_port = host_port(args.upstream)
    listen_host, listen_port = host_port(args.listen)

    async def accept(reader, writer):
        link.stats["connections"] += 1
        if link.is_down:
            abort_with_rst(writer)
            return
        conn = Connection(link, reader, writer)
        link.conns.add(conn)
        await conn.run(up_host, up_port)

    def set_down(down):
        link.is_down = down
        if down:
            for conn in list(link.conns):
                conn.abort()
        write_stats(args.stats_file, link)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, set_down, True)
    loop.add_signal_handler(signal.SIGUSR2, set_down, False)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)

    server = await asyncio.start_server(accept, listen_host, listen_port)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {listen_host}:{port}", flush=True)
    while not stop.is_set():
        write_stats(args.stats_file, link)
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except asyncio.TimeoutError:
            pass
    server.close()
    for conn in list(link.conns):
        conn.abort()
    write_stats(args.stats_file, link)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the real server")
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT, port 0 = any free")
    parser.add_argument("--latency-ms", type=float, default=50, help="one-way delay per direction")
    parser.add_argument("--mbps", type=float, default=50, help="cap per direction, 0 = unlimited")
    parser.add_argument("--reset-mean-mb", type=float, default=0, help="mean MB uploaded per reset")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stats-file")
    asyncio.run(main(parser.parse_args()))
