import { isRecord, stringField, stripAnsi, type ExecutionEvent } from "@tether/shared";

/** The parts of a Jupyter message the translator reads. */
export interface IopubMessage {
  header: { msg_type: string };
  content: unknown;
}

type Bundle = Record<string, unknown>;

/**
 * Turns one iopub message that belongs to an execution into the protocol
 * event the orchestrator relays, or undefined for messages clients do not see
 * (execute_input, status: the runner handles status itself, comm traffic).
 */
export function translateIopub(msg: IopubMessage, requestId: string): ExecutionEvent | undefined {
  const content = isRecord(msg.content) ? msg.content : {};
  switch (msg.header.msg_type) {
    case "stream":
      return { type: "stream", requestId, name: content.name === "stderr" ? "stderr" : "stdout", text: String(content.text ?? "") };
    case "display_data":
    case "update_display_data": {
      const displayId = stringField(content.transient, "display_id");
      return {
        type: "display",
        requestId,
        data: bundle(content.data),
        metadata: bundle(content.metadata),
        ...(displayId !== undefined ? { displayId } : {}),
        update: msg.header.msg_type === "update_display_data",
      };
    }
    case "execute_result":
      return {
        type: "result",
        requestId,
        executionCount: typeof content.execution_count === "number" ? content.execution_count : null,
        data: bundle(content.data),
        metadata: bundle(content.metadata),
      };
    case "error":
      return {
        type: "error",
        requestId,
        name: String(content.ename ?? ""),
        value: String(content.evalue ?? ""),
        traceback: Array.isArray(content.traceback) ? content.traceback.map((line) => stripAnsi(String(line))) : [],
      };
    case "clear_output":
      return { type: "clear_output", requestId, wait: content.wait === true };
    default:
      return undefined;
  }
}

/** A mime bundle or metadata object as Jupyter sent it; anything else (a broken kernel) becomes empty. */
function bundle(value: unknown): Bundle {
  return isRecord(value) ? value : {};
}
