// One "execute Python" tool for an LLM agent, backed by Tether's REST API with plain fetch.
// Tool definitions in the OpenAI (function calling) and Anthropic (tool use) formats, and the
// function that runs a call and turns the result into text the model reads.

const DESCRIPTION =
  "Run Python code in a persistent Jupyter kernel. Variables, imports and files persist between calls. " +
  "Files live in the working directory (use relative paths). The value of the last line is returned, " +
  "print() output too; plots made with plt.show() are returned as images (reported here by size). " +
  "An exception returns its traceback: fix the code and call again. input() needs `stdin` (a list of lines).";

/** JSON Schema of the tool's arguments (the same fields as POST /v1/sessions/:id/execute). */
export const EXECUTE_PARAMETERS = {
  type: "object",
  properties: {
    code: { type: "string", description: "Python code to run." },
    timeoutMs: { type: "integer", minimum: 1, description: "Longest the code may run, in milliseconds (default 60000)." },
    stdin: { type: "array", items: { type: "string" }, description: "Answers for input(), one line per call." },
  },
  required: ["code"],
  additionalProperties: false,
};

/** OpenAI Chat Completions / Responses style: `tools: [openAiTool]`. */
export const openAiTool = { type: "function", function: { name: "execute_python", description: DESCRIPTION, parameters: EXECUTE_PARAMETERS } };

/** Anthropic Messages style: `tools: [anthropicTool]`. */
export const anthropicTool = { name: "execute_python", description: DESCRIPTION, input_schema: EXECUTE_PARAMETERS };

/**
 * A Tether session for one conversation: created on the first call, deleted by close().
 * `url` is the orchestrator (http://127.0.0.1:8080), `key` an API key.
 */
export class TetherTool {
  constructor({ url, key, fetchImpl = fetch }) {
    this.url = url.replace(/\/+$/, "");
    this.key = key;
    this.fetch = fetchImpl;
    this.sessionId = undefined;
  }

  async request(method, path, body) {
    const response = await this.fetch(`${this.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const json = text ? JSON.parse(text) : undefined;
    // Tether errors say what to do in `hint`: hand both to the model.
    if (!response.ok) throw new Error(`${json?.error?.code ?? response.status}: ${json?.error?.message ?? text}${json?.error?.hint ? ` (${json.error.hint})` : ""}`);
    return json;
  }

  /** Runs one tool call's arguments; returns the text for the model. Errors become text too: the model can fix its call. */
  async run(args) {
    try {
      this.sessionId ??= (await this.request("POST", "/v1/sessions", {})).id;
      const result = await this.request("POST", `/v1/sessions/${this.sessionId}/execute`, args);
      return describeResult(result);
    } catch (error) {
      return `Tool error: ${error.message}`;
    }
  }

  async close() {
    if (this.sessionId) await this.request("DELETE", `/v1/sessions/${this.sessionId}`).catch(() => undefined);
    this.sessionId = undefined;
  }
}

/** An ExecuteResponse as text: stdout, stderr, outputs, the traceback or why it ended. */
export function describeResult(result) {
  const parts = [];
  if (result.stdout) parts.push(result.stdout);
  if (result.stderr) parts.push(`[stderr]\n${result.stderr}`);
  for (const output of result.outputs) {
    const image = Object.keys(output.data).find((type) => type.startsWith("image/") && type !== "image/svg+xml");
    if (image) parts.push(`[${image} image, ${Math.round((output.data[image].length * 3) / 4)} bytes]`);
    else if (output.data["text/plain"] !== undefined) parts.push(output.type === "execute_result" ? `Result: ${output.data["text/plain"]}` : output.data["text/plain"]);
  }
  if (result.error) parts.push(result.error.traceback.join("\n"));
  if (result.failure) parts.push(`[${result.status}] ${result.failure.message}`);
  return parts.join("\n") || "(no output)";
}
