import type { StdinMode } from "@tether/shared";

/** What to do with one input_request of the kernel. */
export type StdinAction =
  | { kind: "reply"; value: string }
  | { kind: "forward" }
  | { kind: "exhausted"; message: string };

/**
 * Answers input() prompts for one execution according to its stdin mode.
 * `lines` answers from the list without a round trip; one prompt too many is
 * `exhausted`; `interactive` forwards the prompt to the client.
 */
export class StdinHandler {
  private used = 0;

  constructor(private readonly mode: StdinMode) {}

  /** The kernel's allow_stdin: with `none`, input() raises StdinNotImplementedError at once. */
  get allowStdin(): boolean {
    return this.mode.mode !== "none";
  }

  onPrompt(): StdinAction {
    switch (this.mode.mode) {
      case "interactive":
        return { kind: "forward" };
      case "lines": {
        const lines = this.mode.lines;
        this.used += 1;
        const value = lines[this.used - 1];
        if (value !== undefined) return { kind: "reply", value };
        return {
          kind: "exhausted",
          message: `input() was called ${this.used} times but only ${lines.length} stdin line(s) were given`,
        };
      }
      case "none":
        // The kernel only asks when allow_stdin was true; treat a stray prompt as exhausted.
        return { kind: "exhausted", message: "input() was called but no stdin was given" };
      default: {
        const unknown: never = this.mode;
        throw new Error(`unknown stdin mode ${JSON.stringify(unknown)}`);
      }
    }
  }
}
