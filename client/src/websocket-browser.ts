import type { SocketHandle, SocketHandlers } from "./socket.js";

/**
 * Browsers: the native WebSocket. It cannot send headers, so the credential
 * (a session token, never an API key in a page) travels as `?token=`, which
 * the orchestrator accepts on the stream and masks in its logs.
 */
export async function openSocket(url: string, credential: string | undefined, handlers: SocketHandlers): Promise<SocketHandle> {
  const target = new URL(url);
  if (credential !== undefined) target.searchParams.set("token", credential);
  const socket = new WebSocket(target.toString());
  socket.onopen = () => handlers.open();
  socket.onmessage = (event: MessageEvent<unknown>) => {
    if (typeof event.data === "string") handlers.message(event.data);
  };
  socket.onclose = (event: CloseEvent) => handlers.close(event.code, event.reason);
  // An error is always followed by close, which reports it.
  socket.onerror = () => undefined;
  return { send: (text) => socket.send(text), close: (code, reason) => socket.close(code, reason) };
}
