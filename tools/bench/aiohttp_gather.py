#!/usr/bin/python3
# tools/bench/aiohttp_gather.py - the seed's example (asyncio-guide.txt: fetch_page + gather),
# scaled to a URL list: one task per URL, all gathered, at most N connections in flight (the
# connector's limit), each body read. Run with the distribution's python3-aiohttp:
#
#   /usr/bin/python3 tools/bench/aiohttp_gather.py URLFILE [-j 64] [--cafile CA] [--close]
import argparse
import asyncio
import ssl
import sys

import aiohttp


async def fetch_page(session, url):
    async with session.get(url) as response:
        body = await response.read()
        return response.status, len(body)


async def main(args):
    with open(args.urlfile) as f:
        urls = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    conn = aiohttp.TCPConnector(limit=args.jobs, ssl=ctx, force_close=args.close)
    async with aiohttp.ClientSession(connector=conn) as session:
        tasks = [fetch_page(session, url) for url in urls]
        results = await asyncio.gather(*tasks)
    bad = sum(1 for status, _ in results if status != 200)
    if bad:
        print(f"aiohttp_gather: {bad} requests failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("urlfile")
    p.add_argument("-j", "--jobs", type=int, default=64)
    p.add_argument("--cafile")
    p.add_argument("--close", action="store_true", help="a new connection per request")
    sys.exit(asyncio.run(main(p.parse_args())))
