"""The floor for our libraries: fetch every feed with httpx (conditional GET, state kept in
a JSON file between runs) and parse every changed body with feedparser, nothing else.

Run by bench/peers.py in the peers' throwaway venv (/tmp/peers-env), never imported:
`python bench/peers/floor.py --urls urls.txt --state state.json [--workers 2]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import feedparser
import httpx


def parse(body: bytes) -> int:
    return len(feedparser.parse(body).entries)


async def poll(
    urls: list[str], state: dict[str, dict[str, str]], concurrency: int, workers: int
) -> dict[str, int]:
    counts = {"fetched": 0, "not_modified": 0, "entries": 0, "errors": 0}
    slots = asyncio.Semaphore(concurrency)
    pool = ProcessPoolExecutor(workers) if workers > 0 else None
    loop = asyncio.get_running_loop()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def one(url: str) -> None:
            headers: dict[str, str] = {}
            known = state.get(url, {})
            if "etag" in known:
                headers["If-None-Match"] = known["etag"]
            if "modified" in known:
                headers["If-Modified-Since"] = known["modified"]
            async with slots:
                try:
                    response = await client.get(url, headers=headers)
                except httpx.HTTPError:
                    counts["errors"] += 1
                    return
            if response.status_code == 304:
                counts["not_modified"] += 1
                return
            counts["fetched"] += 1
            body = response.content
            if pool is None:
                counts["entries"] += parse(body)
            else:
                counts["entries"] += await loop.run_in_executor(pool, parse, body)
            fresh = {}
            if etag := response.headers.get("etag"):
                fresh["etag"] = etag
            if modified := response.headers.get("last-modified"):
                fresh["modified"] = modified
            state[url] = fresh

        await asyncio.gather(*(one(url) for url in urls))
    if pool is not None:
        pool.shutdown()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--urls", type=Path, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--workers", type=int, default=0, help="parse processes; 0: inline")
    args = parser.parse_args()
    urls = args.urls.read_text().split()
    state: dict[str, Any] = json.loads(args.state.read_text()) if args.state.exists() else {}
    counts = asyncio.run(poll(urls, state, args.concurrency, args.workers))
    args.state.write_text(json.dumps(state))
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
