import { randomUUID } from "node:crypto";
import type { CallToolResult, ServerNotification, ServerRequest } from "@modelcontextprotocol/sdk/types.js";
import type { RequestHandlerExtra } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { InputRequestEvent, StdinMode } from "@tether/shared";
import { z } from "zod";
import { effectiveExecTimeoutMs } from "../../config.js";
import { errorMessage } from "../../errors.js";
import { explainExecution } from "../../sessions/execution-hints.js";
import type { Session } from "../../sessions/session.js";
import { runExecution } from "../common/run-execution.js";
import { ProgressStream } from "./progress-stream.js";
import { inFlight, sessionNotes, type ToolContext } from "./tool-context.js";
import { executionToToolResult } from "./tool-result.js";

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export const runCodeInput = {
  code: z.string().describe("Python code to run. The value of the last line, if it is an expression, is returned as the result."),
  timeoutMs: z.number().int().positive().optional().describe("Longest the code may run, in milliseconds (default and maximum: see the tool description)."),
  stdin: z.array(z.string()).optional().describe("Answers for input() prompts, one line per call, in order. Without it the user is asked when the client supports that; otherwise input() fails."),
};

const STDIN_NAME = "the `stdin` argument: a list of lines, one per input() call (e.g. stdin: [\"42\"])";

/**
 * run_code: one execution through the session core. Output streams to the
 * client as progress while it runs (when it sent a progressToken); a
 * cancellation (notifications/cancelled, or the MCP session closing)
 * interrupts it, while a dropped HTTP connection does not: the SDK aborts
 * `extra.signal` only for the former. input() prompts become elicitations
 * when the client declared the capability, else `stdin` lines answer them,
 * else input() fails at once.
 */
export async function runCode(context: ToolContext, args: { code: string; timeoutMs?: number | undefined; stdin?: string[] | undefined }, extra: Extra): Promise<CallToolResult> {
  return inFlight(context, async () => {
    const acquired = await context.slot.acquire();
    const { session } = acquired;
    const requestId = `mcp_${randomUUID().replaceAll("-", "")}`;
    const timeoutMs = effectiveExecTimeoutMs(context.config, args.timeoutMs);
    const elicit = args.stdin === undefined && context.server.server.getClientCapabilities()?.elicitation !== undefined;
    const stdin: StdinMode = args.stdin !== undefined ? { mode: "lines", lines: args.stdin } : elicit ? { mode: "interactive" } : { mode: "none" };
    const progressToken = extra._meta?.progressToken;
    const progress =
      progressToken === undefined
        ? undefined
        : new ProgressStream((params) => extra.sendNotification({ method: "notifications/progress", params: { progressToken, ...params } }));
    const interrupt = (): void => {
      session.interrupt(requestId).catch((error: unknown) => context.logger.debug({ err: error, requestId }, "interrupt after cancel failed"));
    };
    const onAbort = (): void => {
      context.logger.info({ requestId, reason: String(extra.signal.reason) }, "run_code cancelled by the client; interrupting");
      interrupt();
    };
    extra.signal.addEventListener("abort", onAbort, { once: true });
    // Ends elicitations still open when the execution ends (a timeout while the user types).
    const ended = new AbortController();
    const ask: Ask = { signal: AbortSignal.any([extra.signal, ended.signal]), relatedRequestId: extra.requestId, timeoutMs, notes: sessionNotes(acquired), unanswered: false, interrupt };
    try {
      const response = await runExecution(session, {
        requestId,
        code: args.code,
        timeoutMs,
        stdin,
        maxOutputBytes: context.config.maxOutputBytes,
        onEvent(event) {
          if (event.type === "stream") progress?.push(event.text);
          else if (event.type === "input_request" && elicit) void askUser(context, session, event, ask);
        },
      }, context.slot.hooks.submit);
      progress?.close();
      const explained = explainExecution(response, {
        requestedTimeoutMs: args.timeoutMs,
        defaultTimeoutMs: context.config.defaultExecTimeoutMs,
        maxTimeoutMs: context.config.maxExecTimeoutMs,
        stdinName: STDIN_NAME,
      });
      return executionToToolResult(explained, ask.notes, { briefError: ask.unanswered });
    } finally {
      ended.abort();
      progress?.close();
      extra.signal.removeEventListener("abort", onAbort);
    }
  });
}

/**
 * One input() prompt as one elicitation (a single string field), sent on the
 * tool call's own stream (relatedRequestId: a request on the standalone GET
 * stream is lost when the client has not opened one). Accept answers the
 * prompt; decline, cancel or a failed elicitation interrupt the execution.
 */
async function askUser(context: ToolContext, session: Session, event: InputRequestEvent, ask: Ask): Promise<void> {
  const prompt = event.prompt.trim();
  try {
    const result = await context.server.server.elicitInput(
      {
        message: prompt ? `The running code asks: ${prompt}` : "The running code is waiting for input (input() with no prompt).",
        requestedSchema: {
          type: "object",
          properties: {
            value: { type: "string", title: prompt || "input", description: event.password ? "A password: it is passed to the code as typed." : "One line of text, passed to input()." },
          },
          required: ["value"],
        },
      },
      { relatedRequestId: ask.relatedRequestId, signal: ask.signal, timeout: ask.timeoutMs },
    );
    const value = result.content?.value;
    if (result.action === "accept" && typeof value === "string") {
      session.inputReply(event.requestId, value);
      return;
    }
    ask.unanswered = true;
    context.logger.info({ requestId: event.requestId, action: result.action }, "input() not answered; interrupting");
    ask.notes.push(`The user did not answer input(${prompt ? JSON.stringify(prompt) : ""}) (${result.action}), so the code was interrupted. Pass stdin, or put the value in the code.`);
  } catch (error) {
    if (ask.signal.aborted) return;
    ask.unanswered = true;
    context.logger.info({ requestId: event.requestId, err: errorMessage(error) }, "elicitation for input() failed; interrupting");
    ask.notes.push(`Asking the user for input() failed (${errorMessage(error)}), so the code was interrupted. Pass stdin, or put the value in the code.`);
  }
  ask.interrupt();
}

interface Ask {
  signal: AbortSignal;
  relatedRequestId: Extra["requestId"];
  timeoutMs: number;
  /** Notes for the tool result (a declined prompt). */
  notes: string[];
  /** A prompt went unanswered and the code was interrupted for it. */
  unanswered: boolean;
  interrupt(): void;
}
