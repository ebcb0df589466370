import type { SocketHandle, SocketHandlers } from "./socket.js";

/** Loaded on the first stream only: programs that never stream never load `ws`. */
let wsModule: Promise<typeof import("ws")> | undefined;

/**
 * Node: the `ws` package (Node 20 has no WebSocket global), with the
 * credential in the Authorization header rather than the URL.
 */
export async function openSocket(url: string, credential: string | undefined, handlers: SocketHandlers): Promise<SocketHandle> {
  wsModule ??= import("ws");
  const { WebSocket } = await wsModule;
  const socket = new WebSocket(url, { headers: credential === undefined ? {} : { authorization: `Bearer ${credential}` } });
  socket.on("open", () => handlers.open());
  socket.on("message", (data, isBinary) => {
    if (!isBinary) handlers.message(data.toString());
  });
  socket.on("close", (code, reason) => handlers.close(code, reason.toString()));
  // An error is always followed by close, which reports it.
  socket.on("error", () => undefined);
  return { send: (text) => socket.send(text), close: (code, reason) => socket.close(code, reason) };
}
