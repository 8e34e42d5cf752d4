"""Closed-loop HTTP load generator for one GraphQL request (asyncio + httpx).

C worker tasks share one httpx.AsyncClient limited to C connections; each worker sends the
request, awaits the answer, records its latency and sends again, until the deadline. A warm-up
phase (not recorded) comes first. A non-200 answer, a body carrying "errors" or a transport
failure counts as an error. Prints one JSON line on stdout:

    {"requests": ..., "rps": ..., "p50_ms": ..., "p90_ms": ..., "p99_ms": ..., "max_ms": ...,
     "errors": ..., ...}

Usage:
    python bench/load.py --url http://127.0.0.1:PORT/graphql --body BODY.json \
        [--token TOKEN | --token-env VAR] [--duration 10] [--connections 16] [--warmup 1]

BODY.json is a GraphQL request ({"query": ..., "variables": ...}), sent as is.
Only loopback targets are accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
ERROR_MARKER = b'"errors"'


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    non200: int = 0
    graphql_errors: int = 0
    transport_errors: int = 0
    sample_error: str | None = None

    def note_error(self, text: str) -> None:
        self.errors += 1
        if self.sample_error is None:
            self.sample_error = text[:300]


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


async def one_request(
    client: httpx.AsyncClient, url: str, body: bytes, stats: Stats | None
) -> None:
    started = time.perf_counter()
    try:
        response = await client.post(url, content=body)
        content = response.content
    except httpx.HTTPError as exc:
        if stats is not None:
            stats.latencies.append(time.perf_counter() - started)
            stats.transport_errors += 1
            stats.note_error(f"{type(exc).__name__}: {exc}")
        return
    elapsed = time.perf_counter() - started
    if stats is None:
        return
    stats.latencies.append(elapsed)
    if response.status_code != 200:
        stats.non200 += 1
        stats.note_error(f"HTTP {response.status_code}: {content[:250]!r}")
    elif ERROR_MARKER in content:
        stats.graphql_errors += 1
        stats.note_error(content[:300].decode("utf-8", "replace"))


async def worker(
    client: httpx.AsyncClient, url: str, body: bytes, deadline: float, stats: Stats | None
) -> None:
    while time.perf_counter() < deadline:
        await one_request(client, url, body, stats)


async def run(
    url: str, body: bytes, token: str | None, duration: float, connections: int, warmup: float
) -> dict[str, object]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(10.0)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=timeout) as client:
        if warmup > 0:
            deadline = time.perf_counter() + warmup
            await asyncio.gather(
                *(worker(client, url, body, deadline, None) for _ in range(connections))
            )
        stats = Stats()
        started = time.perf_counter()
        deadline = started + duration
        # Each worker finishes its in-flight request after the deadline (bounded by the
        # client timeout); the rate divides by the time until the last one came back.
        await asyncio.gather(
            *(worker(client, url, body, deadline, stats) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    latencies = sorted(stats.latencies)
    result: dict[str, object] = {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p90_ms": round(percentile(latencies, 90) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round((latencies[-1] if latencies else 0.0) * 1000, 2),
        "errors": stats.errors,
        "non200": stats.non200,
        "graphql_errors": stats.graphql_errors,
        "transport_errors": stats.transport_errors,
        "duration_s": round(elapsed, 3),
        "connections": connections,
    }
    if stats.sample_error is not None:
        result["sample_error"] = stats.sample_error
    return result


def check_loopback(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        raise SystemExit(f"refusing non-loopback URL: {url}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/graphql")
    parser.add_argument("--body", required=True, type=Path, help="GraphQL request JSON file")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--token-env", help="read the bearer token from this variable instead")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured")
    parser.add_argument("--connections", type=int, default=16, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    args = parser.parse_args(argv)
    check_loopback(args.url)
    if args.connections < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("need --connections >= 1, --duration > 0 and --warmup >= 0")
    token = os.environ.get(args.token_env) if args.token_env else args.token
    body = args.body.read_bytes()
    json.loads(body)  # fail early on a malformed body file
    result = asyncio.run(
        run(args.url, body, token, args.duration, args.connections, args.warmup)
    )
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
