#!/usr/bin/python3
"""Launch Jupyter Server with TCP_NODELAY on its kernel websockets.

WHY
  A stock Jupyter Server (jupyter_server 1.23 on tornado 6.2, Debian 12) answers
  every trivial execute over its kernel websocket in ~40+ ms, against ~3 ms
  for the same kernel driven directly over ZMQ. The floor is Nagle's algorithm
  meeting the peer's delayed ACK:
    * tornado's HTTP1Connection.finish() turns TCP_NODELAY on to flush a
      response and _finish_request() turns it back OFF afterwards;
    * the websocket upgrade (101) is such a response, and the write completes
      inline, so the socket is handed over (_detach_stream) with Nagle ON;
    * jupyter_server's ZMQChannelsHandler never calls set_nodelay(True)
      (tornado documents that websocket handlers must do so themselves);
    * an execute produces several small frames in a burst (status busy,
      execute_input, execute_result, status idle on iopub; execute_reply on
      shell): the first leaves at once, the next waits for the ACK of the
      first, and the client delays that ACK (Linux: 40 ms minimum).
  Evidence: bench/README.md and `strace -f -e trace=setsockopt` on the server.

WHAT
  Before Jupyter Server starts, wrap tornado's WebSocketHandler._detach_stream
  so every accepted websocket stream gets set_nodelay(True) the moment it is
  detached from HTTP processing (before open() runs and before any frame is
  written). Nothing on disk is patched. If a future tornado lacks
  _detach_stream, fall back to forcing TCP_NODELAY on for every tornado
  IOStream (ignore set_nodelay(False)); on loopback this costs nothing.

USAGE (exactly the argv of `python -m jupyter_server`):
  /usr/bin/python3 tether_jupyter_launch.py \
      --ServerApp.ip=127.0.0.1 --ServerApp.port=<port> --ServerApp.token=<token> \
      --ServerApp.open_browser=False --ServerApp.allow_root=True [more options]
  Env TETHER_JUPYTER_NODELAY=0 disables the patch (for A/B measurements);
  TETHER_JUPYTER_NODELAY=all forces the global IOStream fallback.
  It prints one line to stderr: "tether_jupyter_launch: nodelay patch=<mode>".
Self-contained: needs only the interpreter's own tornado + jupyter_server.
"""
import os
import socket
import sys


def _force_all_iostreams():
    import tornado.iostream

    orig = tornado.iostream.IOStream.set_nodelay

    def set_nodelay(self, value):  # noqa: ARG001 - always on
        return orig(self, True)

    tornado.iostream.IOStream.set_nodelay = set_nodelay
    return "iostream-all"


def _patch_websocket_detach():
    import tornado.websocket

    handler_cls = tornado.websocket.WebSocketHandler
    orig = getattr(handler_cls, "_detach_stream", None)
    if orig is None:
        return None

    def _detach_stream(self):
        stream = orig(self)
        try:
            stream.set_nodelay(True)
        except Exception:  # closed already, or not a TCP socket
            sock = getattr(stream, "socket", None)
            if sock is not None:
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:
                    pass
        return stream

    _detach_stream.__wrapped__ = orig
    handler_cls._detach_stream = _detach_stream
    return "websocket-detach"


def apply_patch(mode=None):
    """Apply the TCP_NODELAY patch; return the mode applied (or 'off')."""
    mode = (mode if mode is not None else os.environ.get("TETHER_JUPYTER_NODELAY", "1")).lower()
    if mode in ("0", "off", "false", "no"):
        return "off"
    if mode == "all":
        return _force_all_iostreams()
    return _patch_websocket_detach() or _force_all_iostreams()


def main():
    applied = apply_patch()
    sys.stderr.write("tether_jupyter_launch: nodelay patch=%s\n" % applied)
    sys.stderr.flush()
    from jupyter_server.serverapp import main as jupyter_main

    # jupyter_server's main() parses sys.argv[1:], i.e. the launcher's own args.
    sys.exit(jupyter_main())


if __name__ == "__main__":
    main()
