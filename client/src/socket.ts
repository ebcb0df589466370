/**
 * The little the stream needs from a websocket, so one stream works over the
 * browser's native WebSocket and over `ws` on Node (`#websocket` picks the
 * implementation through package.json conditions: browser bundles never see `ws`).
 */
export interface SocketHandlers {
  open(): void;
  /** A text frame (binary frames are not part of the client protocol and are dropped). */
  message(text: string): void;
  /** Always called once, also when the socket never opened. */
  close(code: number, reason: string): void;
}

export interface SocketHandle {
  send(text: string): void;
  close(code?: number, reason?: string): void;
}

export type OpenSocket = (url: string, credential: string | undefined, handlers: SocketHandlers) => Promise<SocketHandle>;
