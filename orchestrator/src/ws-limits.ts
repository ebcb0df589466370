import type { WebSocket } from "ws";

/**
 * Sets how large a frame this socket accepts from now on. The websocket
 * server has one `maxPayload` for every route; the worker gateway needs a
 * tiny one until the hello is verified (an unauthenticated peer must not
 * make us buffer 64 MiB) and a large one after, and a client stream its own
 * frame limit. ws keeps the limit on the socket's receiver (a private field,
 * checked when a frame header arrives, before any payload is buffered); the
 * test in ws-limits.test.ts fails if a ws upgrade moves it.
 */
export function setMaxPayload(socket: WebSocket, bytes: number): void {
  const receiver: unknown = Reflect.get(socket, "_receiver");
  if (typeof receiver === "object" && receiver !== null && "_maxPayload" in receiver) Reflect.set(receiver, "_maxPayload", bytes);
}
