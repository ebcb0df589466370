import { describe, expect, it } from "vitest";
import { StdinHandler } from "./stdin-handler.js";

describe("StdinHandler", () => {
  it("answers prompts from lines in order, then reports exhaustion with the counts", () => {
    const stdin = new StdinHandler({ mode: "lines", lines: ["a"] });
    expect(stdin.allowStdin).toBe(true);
    expect(stdin.onPrompt()).toEqual({ kind: "reply", value: "a" });
    expect(stdin.onPrompt()).toEqual({ kind: "exhausted", message: "input() was called 2 times but only 1 stdin line(s) were given" });
  });

  it("forwards prompts in interactive mode and disallows stdin in none mode", () => {
    expect(new StdinHandler({ mode: "interactive" }).onPrompt()).toEqual({ kind: "forward" });
    expect(new StdinHandler({ mode: "none" }).allowStdin).toBe(false);
  });
});
