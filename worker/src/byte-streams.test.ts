import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { FlowSender } from "./byte-streams.js";

function recordingOutput() {
  const sent: number[] = [];
  let ended = false;
  return {
    sent,
    get ended() {
      return ended;
    },
    output: {
      sendChunk: (_id: number, payload: Uint8Array): void => {
        sent.push(payload.byteLength);
      },
      sendEnd: () => {
        ended = true;
      },
    },
  };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("FlowSender", () => {
  it("stops reading once the window is full and resumes when acked", async () => {
    const source = new PassThrough({ highWaterMark: 10 });
    const rec = recordingOutput();
    const sender = new FlowSender(1, source, rec.output, 30);
    for (let i = 0; i < 6; i++) source.write(Buffer.alloc(10));
    source.end();
    await flush();
    expect(rec.sent.reduce((a, b) => a + b, 0)).toBe(30);
    expect(sender.unacknowledged).toBe(30);
    expect(rec.ended).toBe(false);

    sender.ack(10);
    await flush();
    expect(rec.sent.reduce((a, b) => a + b, 0)).toBe(40);

    sender.ack(30);
    await expect(sender.done).resolves.toBe(60);
    expect(rec.ended).toBe(true);
  });

  it("never has more than the window unacknowledged", async () => {
    const source = new PassThrough();
    const rec = recordingOutput();
    const sender = new FlowSender(1, source, rec.output, 64);
    let maxUnacked = 0;
    const originalSend = rec.output.sendChunk;
    rec.output.sendChunk = (id, payload) => {
      originalSend(id, payload);
      maxUnacked = Math.max(maxUnacked, sender.unacknowledged + payload.byteLength);
    };
    for (let i = 0; i < 20; i++) source.write(Buffer.alloc(16));
    source.end();
    while (!rec.ended) {
      await flush();
      sender.ack(sender.unacknowledged);
    }
    expect(maxUnacked).toBeLessThanOrEqual(64);
    await expect(sender.done).resolves.toBe(320);
  });
});
