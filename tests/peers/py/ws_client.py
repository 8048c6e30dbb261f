"""A Python `websockets` client for the plain WebSocket endpoint, driven by a Rust test.

Usage: python3 ws_client.py ws://127.0.0.1:PORT/ws?topics=alerts COUNT
Prints one JSON object per line; sends one command; exits after COUNT messages with a
normal close (1000).
"""

import asyncio
import json
import sys

import websockets


def out(obj):
    print(json.dumps(obj), flush=True)


async def main(url, count):
    async with websockets.connect(url) as ws:
        out({"ev": "recv", "msg": json.loads(await ws.recv())})
        await ws.send(json.dumps({"type": "command", "topic": "room:lobby", "event": "ack", "payload": {"py": True}, "ref": "p1"}))
        got = 0
        while got < count:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 20))
            out({"ev": "recv", "msg": msg})
            if msg.get("type") == "message":
                got += 1
        await ws.close(code=1000, reason="done")
        out({"ev": "closed", "code": ws.close_code})


asyncio.run(asyncio.wait_for(main(sys.argv[1], int(sys.argv[2])), 60))
