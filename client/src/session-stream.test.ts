import { describe, expect, it } from "vitest";
import { resolveConfig } from "./config.js";
import { HttpClient } from "./http.js";
import { SessionStream, type StreamState } from "./session-stream.js";
import type { OpenSocket, SocketHandlers } from "./socket.js";

/** A scripted server side: each connect attempt is recorded with its URL and can be fed frames. */
class FakeServer {
  readonly attempts: { url: string; handlers: SocketHandlers; sent: string[] }[] = [];
  readonly open: OpenSocket = async (url, _credential, handlers) => {
    const attempt = { url, handlers, sent: [] as string[] };
    this.attempts.push(attempt);
    return { send: (text) => attempt.sent.push(text), close: () => undefined };
  };

  last() {
    const attempt = this.attempts.at(-1);
    if (!attempt) throw new Error("no connection attempt yet");
    return attempt;
  }

  hello(lastSeq: number): void {
    this.last().handlers.message(JSON.stringify({ type: "hello", requestId: null, sessionId: "ses_1", protocolVersion: "1.1", status: "ready", phase: "ready", lastSeq }));
  }

  stdout(seq: number, text: string): void {
    this.last().handlers.message(`{"seq":${seq},"type":"stream","requestId":"r1","name":"stdout","text":${JSON.stringify(text)}}`);
  }
}

function streamWith(server: FakeServer, probe: (path: string) => Promise<Response>, afterSeq?: number) {
  const config = resolveConfig({ baseUrl: "http://127.0.0.1:1", apiKey: "k", reconnect: { initialDelayMs: 1, maxDelayMs: 2, giveUpAfterMs: 5_000 }, fetch: (input) => probe(String(input)) }, {});
  const stream = new SessionStream({ sessionId: "ses_1", config, http: new HttpClient(config), openSocket: server.open, afterSeq });
  const texts: string[] = [];
  const states: StreamState["kind"][] = [];
  stream.events.on("message", ({ message }) => {
    if (message.type === "stream") texts.push(message.text);
  });
  stream.events.on("state", (state) => states.push(state.kind));
  return { stream, texts, states };
}

const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 5));
  expect(condition()).toBe(true);
};

describe("the session stream", () => {
  it("starts live, drops what it has seen, and resumes with ?after=<last seq> after a drop", async () => {
    const server = new FakeServer();
    const plainNotFound = async () => new Response(null, { status: 404 });
    const { stream, texts, states } = streamWith(server, plainNotFound);
    const ready = stream.ready();
    await until(() => server.attempts.length === 1);
    expect(server.last().url).toBe("ws://127.0.0.1:1/v1/sessions/ses_1/stream");
    server.hello(10);
    await ready;
    server.stdout(11, "a");
    server.stdout(12, "b");
    server.last().handlers.close(1006, "");
    await until(() => server.attempts.length === 2);
    expect(server.last().url).toBe("ws://127.0.0.1:1/v1/sessions/ses_1/stream?after=12");
    server.hello(14);
    // The replay overlaps what was seen (a server may resend): only seq 13 and 14 are new.
    server.stdout(12, "b");
    server.stdout(13, "c");
    server.stdout(14, "d");
    expect(texts).toEqual(["a", "b", "c", "d"]);
    expect(stream.seq).toBe(14);
    expect(states).toEqual(["connecting", "open", "reconnecting", "connecting", "open"]);
    stream.close();
  });

  it("says when a reconnect has caught up with what the server had at hello", async () => {
    const server = new FakeServer();
    const { stream } = streamWith(server, async () => new Response(null, { status: 404 }), 5);
    const caughtUp: number[] = [];
    stream.events.on("caughtUp", ({ generation }) => caughtUp.push(generation));
    stream.ready().catch(() => undefined);
    await until(() => server.attempts.length === 1);
    expect(server.last().url).toContain("?after=5");
    server.hello(7);
    expect(caughtUp).toEqual([]);
    server.stdout(6, "x");
    expect(caughtUp).toEqual([]);
    server.stdout(7, "y");
    expect(caughtUp).toEqual([1]);
    stream.close();
  });

  it("diagnoses a refused upgrade with a GET: 410 is reported as expired and the stream goes on live", async () => {
    const server = new FakeServer();
    const probes: string[] = [];
    const expiredBody = { error: { code: "TETHER_ERR_EVENTS_EXPIRED", message: "gone", hint: "reconnect" } };
    const { stream } = streamWith(server, async (url) => {
      probes.push(url);
      return new Response(JSON.stringify(expiredBody), { status: 410 });
    }, 3);
    const expired: string[] = [];
    stream.events.on("expired", (error) => expired.push(error.code));
    stream.ready().catch(() => undefined);
    await until(() => server.attempts.length === 1);
    server.last().handlers.close(1006, "");
    await until(() => server.attempts.length === 2);
    expect(probes).toEqual(["http://127.0.0.1:1/v1/sessions/ses_1/stream?after=3"]);
    expect(expired).toEqual(["TETHER_ERR_EVENTS_EXPIRED"]);
    expect(server.last().url).toBe("ws://127.0.0.1:1/v1/sessions/ses_1/stream");
    stream.close();
  });

  it("closes for good with the server's error when the upgrade is refused for a reason retrying cannot fix", async () => {
    const server = new FakeServer();
    const body = { error: { code: "TETHER_ERR_AUTH_EXPIRED", message: "expired token" } };
    const { stream } = streamWith(server, async () => new Response(JSON.stringify(body), { status: 401 }));
    const ready = stream.ready();
    await until(() => server.attempts.length === 1);
    server.last().handlers.close(1006, "");
    await expect(ready).rejects.toMatchObject({ name: "AuthenticationError", code: "TETHER_ERR_AUTH_EXPIRED", status: 401 });
    expect(stream.current.kind).toBe("closed");
    expect(server.attempts).toHaveLength(1);
  });
});
