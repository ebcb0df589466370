#!/usr/bin/python3
"""Baseline: drive an ipykernel directly over ZMQ with jupyter_client.

Starts an ipykernel with jupyter_client's KernelManager (run this with Debian's
/usr/bin/python3 or $TETHER_PYTHON: it needs jupyter_client + ipykernel), runs
`x = 1`, warms up, then times trivial executes of `x + 1`. Each sample is the
time from sending execute_request to having BOTH the shell execute_reply and the
iopub `status: idle` whose parent is that request (a request is done only when
both have arrived; they travel on different channels).

Modes:
  zmq_direct.py [--n N] [--warmup W]
      one batch, prints {"samples_ms": [...], "warmup": W} and exits.
  zmq_direct.py --serve
      starts the kernel, prints {"ready": true}, then reads commands on stdin,
      one per line: "run N" -> prints {"samples_ms": [...]}; "quit" -> exits.
      Used by bench/scenarios/execute-overhead.mjs to interleave subjects.
The kernel is always shut down on exit (also on SIGTERM / stdin EOF).
"""
import argparse
import json
import signal
import sys
import time

from jupyter_client.manager import KernelManager


def execute_once(kc, code, timeout=30.0):
    """Send one execute_request; return elapsed ms once reply AND idle are in."""
    t0 = time.perf_counter()
    msg_id = kc.execute(code, silent=False, store_history=False)
    got_reply = False
    got_idle = False
    deadline = t0 + timeout
    # Both messages are queued by ZMQ's I/O thread as they arrive, so waiting
    # for them one after the other adds no latency beyond the later of the two.
    while not got_reply:
        msg = kc.get_shell_msg(timeout=max(0.0, deadline - time.perf_counter()))
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "execute_reply":
            if msg["content"].get("status") != "ok":
                raise RuntimeError("execute failed: %r" % (msg["content"],))
            got_reply = True
    while not got_idle:
        msg = kc.get_iopub_msg(timeout=max(0.0, deadline - time.perf_counter()))
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"].get("execution_state") == "idle"
        ):
            got_idle = True
    return (time.perf_counter() - t0) * 1000.0


def drain(kc):
    while True:
        try:
            kc.get_iopub_msg(timeout=0.05)
        except Exception:
            break


def run_batch(kc, n):
    return [execute_once(kc, "x + 1") for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--serve", action="store_true")
    args = ap.parse_args()

    km = KernelManager(kernel_name="python3")
    # Use this interpreter for the kernel too (the kernelspec may say python3,
    # which could resolve to a python without ipykernel on PATH).
    km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    km.start_kernel()

    def stop(*_):
        try:
            km.shutdown_kernel(now=True)
        finally:
            sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        kc = km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        execute_once(kc, "x = 1")
        run_batch(kc, args.warmup)
        drain(kc)
        if not args.serve:
            print(json.dumps({"samples_ms": run_batch(kc, args.n), "warmup": args.warmup}), flush=True)
            return
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "run":
                n = int(parts[1]) if len(parts) > 1 else 1
                print(json.dumps({"samples_ms": run_batch(kc, n)}), flush=True)
            elif parts[0] == "quit":
                break
    finally:
        try:
            kc.stop_channels()
        except Exception:
            pass
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
