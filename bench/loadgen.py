"""A small HTTP/1.1 load generator: ``--clients`` keep-alive connections on asyncio streams.

wrk is not installed here and CI must not depend on it; httpx costs more CPU per
request than the server under test, so this speaks just enough HTTP/1.1 (GET,
Content-Length or chunked bodies) to keep the client cheap. Each client sends one
request, reads the whole answer, and sends the next; latency is per request.

    .venv/bin/python bench/loadgen.py --url http://127.0.0.1:8000 --path /gbfs/station_status.json \
        [--clients 50] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from urllib.parse import urlsplit


async def _read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length, chunked = 0, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def _client(
    host: str, port: int, paths: list[str], spread: int, until: float, warm: float, out: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    try:
        while (now := time.perf_counter()) < until:
            path = rng.choice(paths).replace("{n}", f"{rng.randint(1, spread):04d}")
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
            try:  # an answer that has not come 5 s after the run's end counts as an error
                status = await asyncio.wait_for(_read_answer(reader), timeout=until - now + 5)
            except TimeoutError:
                errors.append(0)
                return
            done = time.perf_counter()
            if done >= warm:  # counted when answered within the measured window
                if status != 200:
                    errors.append(status)
                else:
                    out.append(done - now)
    finally:
        writer.close()


async def run(
    url: str, paths: list[str], clients: int, seconds: float, warmup: float, spread: int = 1
) -> dict[str, float]:
    parts = urlsplit(url)
    t0 = time.perf_counter()
    warm, until = t0 + warmup, t0 + warmup + seconds
    latencies: list[float] = []
    errors: list[int] = []
    await asyncio.gather(
        *(
            _client(parts.hostname or "127.0.0.1", parts.port or 80, paths, spread, until, warm, latencies, errors)
            for _ in range(clients)
        )
    )
    elapsed = time.perf_counter() - warm
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50": q(0.5),
        "p99": q(0.99),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--path", action="append", required=True, help="repeat to spread requests over several paths")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--spread", type=int, default=1, help="'{n}' in a path becomes a random 0001..SPREAD")
    args = ap.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.path, args.clients, args.seconds, args.warmup, args.spread))))


if __name__ == "__main__":
    main()
