import { ExecutionFold } from "@tether/shared";

/**
 * Rich outputs one REST response holds at most (a loop of large plots must not
 * grow the orchestrator without bound); the websocket stream has no such cap.
 */
export const MAX_REST_OUTPUTS_BYTES = 64 * 1024 * 1024;

/**
 * The REST answer's fold (shared with the client SDK: @tether/shared's
 * ExecutionFold) with the orchestrator's caps: stream text past
 * `maxOutputBytes` per stream and rich outputs past MAX_REST_OUTPUTS_BYTES
 * are left out, and the response says `truncated`.
 */
export class ExecutionResultFold extends ExecutionFold {
  constructor(requestId: string, maxOutputBytes: number) {
    super(requestId, { maxStreamBytes: maxOutputBytes, maxOutputsBytes: MAX_REST_OUTPUTS_BYTES });
  }
}
