import { Tether, TetherError, type ExecuteResponse, type Session, type SessionStatusUpdate, type StreamState } from "@tether/client";
import { FilesPanel } from "./files-panel.js";
import { OutputView, fitFramesToContent } from "./output-view.js";
import { loadState, saveState, takeHashCredential, type PageState } from "./page-state.js";

/** The playground page: every call goes through the SDK, to the orchestrator that serves the page. */

function element<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`The page lacks #${id}.`);
  return found;
}

const ui = {
  keyForm: element("key-form", HTMLFormElement),
  apiKey: element("api-key", HTMLInputElement),
  idleTimeout: element("idle-timeout", HTMLInputElement),
  tokenForm: element("token-form", HTMLFormElement),
  token: element("token", HTMLInputElement),
  sessionId: element("session-id", HTMLInputElement),
  sessionLabel: element("session-label", HTMLSpanElement),
  status: element("status", HTMLSpanElement),
  connection: element("connection", HTMLSpanElement),
  progress: element("progress", HTMLOListElement),
  notice: element("notice", HTMLParagraphElement),
  code: element("code", HTMLTextAreaElement),
  run: element("run", HTMLButtonElement),
  interrupt: element("interrupt", HTMLButtonElement),
  runState: element("run-state", HTMLSpanElement),
  output: element("output", HTMLDivElement),
};

const output = new OutputView(ui.output, () => persistSeq());
const files = new FilesPanel(element("file-list", HTMLUListElement), element("upload", HTMLInputElement), element("refresh-files", HTMLButtonElement), showError);
let state: PageState | undefined;
let session: Session | undefined;
let running: { controller: AbortController | undefined } | undefined;

function showNotice(text: string, kind: "info" | "error" = "info"): void {
  ui.notice.hidden = false;
  ui.notice.dataset.kind = kind;
  ui.notice.textContent = text;
}

function showError(error: unknown): void {
  const text = error instanceof TetherError ? `${error.code}: ${error.message}${error.hint ? ` (${error.hint})` : ""}` : String(error);
  showNotice(text, "error");
}

function tetherFor(credential: PageState["credential"]): Tether {
  // No baseUrl: the SDK uses this page's origin, the orchestrator that served it.
  return new Tether(credential.kind === "apiKey" ? { apiKey: credential.value } : { token: credential.value });
}

function showStatus(update: SessionStatusUpdate): void {
  ui.status.dataset.status = update.status;
  ui.status.textContent = update.status === update.phase ? update.status : `${update.status} · ${update.phase}`;
  if (update.status === "stopped" && update.phase === "stopped") {
    const why = update.stopReason ? `${update.stopReason.kind}: ${update.stopReason.message}` : "stopped";
    showNotice(`Scaled to zero (${why}). The next run or file call resumes it on a new worker: files come back, variables do not.`);
  } else if (update.status === "starting" && update.phase === "restoring") {
    showNotice("Resuming: restoring the workspace files on a new worker…");
  } else if (update.status === "failed") {
    showNotice(`The session failed: ${update.reason ?? "see its failure"}`, "error");
  }
}

function showConnection(state: StreamState): void {
  ui.connection.dataset.state = state.kind;
  switch (state.kind) {
    case "idle":
    case "connecting":
      ui.connection.textContent = "connecting…";
      return;
    case "open":
      ui.connection.textContent = "connected";
      return;
    case "reconnecting":
      ui.connection.textContent = `reconnecting in ${state.delayMs} ms (attempt ${state.attempt}): ${state.error.message}`;
      return;
    case "closed":
      ui.connection.textContent = `disconnected${state.error ? `: ${state.error.message}` : ""}`;
      return;
    default: {
      const unreachable: never = state;
      return unreachable;
    }
  }
}

function addProgress(update: SessionStatusUpdate, startedAt: number): void {
  const item = document.createElement("li");
  item.dataset.phase = update.phase;
  item.textContent = `${update.phase} (${Math.round(performance.now() - startedAt)} ms)`;
  ui.progress.append(item);
}

let seqTimer: ReturnType<typeof setTimeout> | undefined;
/** Keeps the last seq seen in sessionStorage (at most every 200 ms). */
function persistSeq(): void {
  if (seqTimer !== undefined) return;
  seqTimer = setTimeout(() => {
    seqTimer = undefined;
    if (state && session?.lastSeq !== undefined) saveState({ ...state, lastSeq: session.lastSeq });
  }, 200);
}

function useSession(next: Session, credential: PageState["credential"], run?: PageState["run"]): void {
  session?.close();
  session = next;
  state = { credential, sessionId: next.id, ...(run ? { run } : {}) };
  saveState(state);
  ui.sessionLabel.textContent = next.id;
  next.on("status", showStatus);
  next.on("connection", showConnection);
  next.on("error", showError);
  ui.run.disabled = false;
  ui.interrupt.disabled = false;
  files.attach(next);
}

async function follow(result: Promise<ExecuteResponse>, controller: AbortController | undefined): Promise<void> {
  output.clear();
  running = { controller };
  ui.run.disabled = true;
  ui.runState.textContent = "running…";
  try {
    output.finish(await result);
  } catch (error) {
    showError(error);
  } finally {
    running = undefined;
    ui.run.disabled = false;
    ui.runState.textContent = "";
    persistSeq();
    void files.refresh();
    // ready ⇄ busy is not streamed (not a phase change): read where the session is now.
    session
      ?.info()
      .then((info) => showStatus({ status: info.status, phase: info.phase, ...(info.stopReason ? { stopReason: info.stopReason } : {}) }))
      .catch(showError);
  }
}

async function run(): Promise<void> {
  if (!session || !state || running) return;
  const code = ui.code.value;
  ui.notice.hidden = true;
  try {
    await session.connect();
  } catch (error) {
    return showError(error);
  }
  const requestId = `pg_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  // Every message of this run comes after this seq: a reload replays the cell from here.
  state = { ...state, run: { requestId, afterSeq: session.lastSeq ?? 0, code } };
  saveState(state);
  const controller = new AbortController();
  await follow(session.execute(code, { requestId, signal: controller.signal, ...output.callbacks() }), controller);
}

function interrupt(): void {
  const controller = running?.controller;
  if (controller && !controller.signal.aborted) controller.abort();
  else session?.interrupt().catch(showError);
}

async function newSession(): Promise<void> {
  const key = ui.apiKey.value.trim();
  if (key === "") return showNotice("Enter an API key (or use a session token).", "error");
  const credential = { kind: "apiKey" as const, value: key };
  ui.progress.replaceChildren();
  ui.progress.hidden = false;
  const startedAt = performance.now();
  const idleTimeoutS = Number(ui.idleTimeout.value);
  try {
    const created = await tetherFor(credential).createSession({
      metadata: { source: "playground" },
      ...(idleTimeoutS > 0 ? { idleTimeoutS } : {}),
      onProgress: (update) => {
        addProgress(update, startedAt);
        showStatus(update);
      },
    });
    useSession(created, credential);
  } catch (error) {
    showError(error);
  }
}

/** After a reload: the same session, the last cell replayed from its start and followed live. */
async function reattach(stored: PageState): Promise<void> {
  const afterSeq = stored.run?.afterSeq ?? stored.lastSeq;
  const handle = tetherFor(stored.credential).session(stored.sessionId, afterSeq === undefined ? {} : { afterSeq });
  useSession(handle, stored.credential, stored.run);
  if (stored.run) {
    ui.code.value = stored.run.code;
    showNotice(`Re-attached to ${stored.sessionId} after a reload: the last cell's output is replayed from its start, then followed live.`);
    await follow(handle.attach(stored.run.requestId, output.callbacks()), undefined);
  }
}

ui.keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void newSession();
});
ui.tokenForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = ui.token.value.trim();
  const id = ui.sessionId.value.trim();
  if (token === "" || id === "") return showNotice("A session token needs its session id.", "error");
  useSession(tetherFor({ kind: "token", value: token }).session(id), { kind: "token", value: token });
});
ui.run.addEventListener("click", () => void run());
ui.interrupt.addEventListener("click", interrupt);
ui.code.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && event.shiftKey) {
    event.preventDefault();
    void run();
  }
});

fitFramesToContent();
const handedOver = takeHashCredential();
const stored = loadState();
if (handedOver) useSession(tetherFor({ kind: "token", value: handedOver.token }).session(handedOver.sessionId), { kind: "token", value: handedOver.token });
else if (stored) void reattach(stored);
