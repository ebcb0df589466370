#!/usr/bin/python3
"""Baseline for output throughput and large displays: ipykernel over ZMQ
(jupyter_client), no Tether. `--serve`: prints {"ready": true}, then one JSON
command per stdin line: {"code": "..."} -> runs it, counts what iopub carries
for it until reply AND idle, prints {"ms": elapsed, "stream_bytes": N,
"display_bytes": N (sum of display data string lengths), "messages": N}.
"""
import json
import sys
import time

from jupyter_client.manager import KernelManager


def run(kc, code, timeout=600.0):
    t0 = time.perf_counter()
    msg_id = kc.execute(code, silent=False, store_history=False)
    got_reply = got_idle = False
    stream_bytes = display_bytes = messages = 0
    while not (got_reply and got_idle):
        if not got_idle:
            msg = kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            t = msg["msg_type"]
            if t == "stream":
                messages += 1
                stream_bytes += len(msg["content"]["text"].encode())
            elif t in ("display_data", "execute_result"):
                messages += 1
                display_bytes += sum(len(v) for v in msg["content"]["data"].values() if isinstance(v, str))
            elif t == "status" and msg["content"]["execution_state"] == "idle":
                got_idle = True
        else:
            msg = kc.get_shell_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_reply":
                got_reply = True
    return {"ms": (time.perf_counter() - t0) * 1000.0, "stream_bytes": stream_bytes, "display_bytes": display_bytes, "messages": messages}


def main():
    km = KernelManager(kernel_name="python3")
    km.start_kernel()
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        print(json.dumps({"ready": True, "pid": km.provisioner.pid if getattr(km, "provisioner", None) else None}), flush=True)
        for line in sys.stdin:
            line = line.strip()
            if not line or line == "quit":
                break
            print(json.dumps(run(kc, json.loads(line)["code"])), flush=True)
        kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
