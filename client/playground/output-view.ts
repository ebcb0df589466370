import type { DisplayOutput, ExecuteResponse, ExecutionCallbacks, ExecutionError, InputPrompt, ResultOutput } from "@tether/client";

/**
 * One cell's output, rendered as it streams: text appended to the current
 * block, plots as <img>, HTML in a sandboxed iframe (scripts may run, but in
 * an opaque origin: no access to this page, its storage or its token), input()
 * prompts answered in place. Nothing from the kernel is ever parsed as HTML in
 * this document.
 */
export class OutputView {
  private lastStream: { name: "stdout" | "stderr"; element: HTMLPreElement } | undefined;
  private readonly displays = new Map<string, HTMLElement[]>();
  private clearOnNextOutput = false;

  /** `onActivity` runs after every callback (the page saves the last seq seen). */
  constructor(
    private readonly container: HTMLElement,
    private readonly onActivity: () => void = () => undefined,
  ) {}

  clear(): void {
    this.container.replaceChildren();
    this.lastStream = undefined;
    this.displays.clear();
    this.clearOnNextOutput = false;
  }

  /** The SDK callbacks that feed this view. */
  callbacks(): ExecutionCallbacks {
    const after = <T, R>(handle: (value: T) => R) => (value: T): R => {
      // Follow the output while the reader is at its end; leave them be when they scrolled up.
      const box = this.container;
      const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      const returned = handle(value);
      if (atEnd) box.scrollTop = box.scrollHeight;
      this.onActivity();
      return returned;
    };
    return {
      onStdout: after((text: string) => this.stream("stdout", text)),
      onStderr: after((text: string) => this.stream("stderr", text)),
      onDisplay: after((display: DisplayOutput) => this.display(display)),
      onResult: after((result: ResultOutput) => this.result(result)),
      onError: after((error: ExecutionError) => this.error(error)),
      onClearOutput: after(({ wait }: { wait: boolean }) => (wait ? (this.clearOnNextOutput = true) : this.clear())),
      onInput: after((request: InputPrompt) => this.input(request)),
      onResumed: after(({ restoredFiles }: { restoredFiles: number }) => this.note(`The session was resumed on a new worker: ${restoredFiles} file(s) restored, variables and imports are gone.`)),
      onKernelDied: after(({ reason }: { reason: string }) => this.note(`The kernel died: ${reason}`)),
      onEventsExpired: () => this.note("Some output was missed while disconnected (no longer kept by the server); the final result below is complete."),
    };
  }

  note(text: string): void {
    const element = document.createElement("div");
    element.className = "note";
    element.textContent = text;
    this.append(element);
  }

  finish(result: ExecuteResponse): void {
    const element = document.createElement("div");
    element.className = "done";
    element.dataset.status = result.status;
    const failure = result.failure ? ` (${result.failure.code})` : "";
    element.textContent = `${result.status}${failure} · ${Math.round(result.durationMs)} ms${result.executionCount !== null ? ` · [${result.executionCount}]` : ""}`;
    this.container.append(element);
  }

  private stream(name: "stdout" | "stderr", text: string): void {
    this.flushPendingClear();
    if (this.lastStream?.name !== name || this.lastStream.element.parentElement !== this.container) {
      const element = document.createElement("pre");
      element.className = `stream ${name}`;
      this.container.append(element);
      this.lastStream = { name, element };
    }
    this.lastStream.element.append(text);
  }

  private display(display: DisplayOutput): void {
    if (display.update) {
      if (display.displayId === undefined) return;
      for (const element of this.displays.get(display.displayId) ?? []) element.replaceChildren(...renderBundle(display.data));
      return;
    }
    const element = this.bundleBlock(display.data);
    if (display.displayId !== undefined) this.displays.set(display.displayId, [...(this.displays.get(display.displayId) ?? []), element]);
  }

  private result(result: ResultOutput): void {
    this.bundleBlock(result.data).classList.add("result");
  }

  private error(error: ExecutionError): void {
    const element = document.createElement("pre");
    element.className = "error";
    element.textContent = error.traceback.length > 0 ? error.traceback.join("\n") : `${error.name}: ${error.value}`;
    this.append(element);
  }

  private input(request: InputPrompt): Promise<string> {
    this.flushPendingClear();
    const row = document.createElement("div");
    row.className = "input-prompt";
    const label = document.createElement("span");
    label.textContent = request.prompt;
    const field = document.createElement("input");
    field.type = request.password ? "password" : "text";
    field.setAttribute("aria-label", request.prompt || "input");
    row.append(label, field);
    this.append(row);
    field.focus();
    return new Promise<string>((resolve) => {
      field.addEventListener("keydown", (event) => {
        if (event.key !== "Enter") return;
        const answered = document.createElement("span");
        answered.textContent = request.password ? "••••" : field.value;
        field.replaceWith(answered);
        resolve(field.value);
      });
    });
  }

  private bundleBlock(data: Record<string, unknown>): HTMLElement {
    this.flushPendingClear();
    const element = document.createElement("div");
    element.className = "display";
    element.append(...renderBundle(data));
    this.append(element);
    return element;
  }

  private append(element: HTMLElement): void {
    this.flushPendingClear();
    this.container.append(element);
    this.lastStream = undefined;
  }

  private flushPendingClear(): void {
    if (!this.clearOnNextOutput) return;
    this.clear();
  }
}

/** The richest representation of a mime bundle this page can show safely. */
function renderBundle(data: Record<string, unknown>): HTMLElement[] {
  for (const mime of ["image/png", "image/jpeg"]) {
    const base64 = data[mime];
    if (typeof base64 === "string") {
      const img = document.createElement("img");
      img.src = `data:${mime};base64,${base64.replace(/\s+/g, "")}`;
      img.alt = typeof data["text/plain"] === "string" ? data["text/plain"] : mime;
      return [img];
    }
  }
  const svg = data["image/svg+xml"];
  // As an <img>, an SVG's scripts never run.
  if (typeof svg === "string") {
    const img = document.createElement("img");
    img.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
    return [img];
  }
  const html = data["text/html"];
  if (typeof html === "string") return [sandboxedFrame(html)];
  const text = data["text/plain"];
  const pre = document.createElement("pre");
  pre.textContent = typeof text === "string" ? text : JSON.stringify(data, null, 2);
  return [pre];
}

/**
 * HTML output in an iframe sandboxed without allow-same-origin: it runs in an
 * opaque origin. A small script reports its height so the frame fits.
 */
function sandboxedFrame(html: string): HTMLIFrameElement {
  const frame = document.createElement("iframe");
  frame.setAttribute("sandbox", "allow-scripts");
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.srcdoc = `<!doctype html><meta charset="utf-8"><style>body{margin:4px;font-family:system-ui,sans-serif}</style>${html}<script>new ResizeObserver(()=>parent.postMessage({tetherFrameHeight:document.documentElement.scrollHeight},"*")).observe(document.documentElement)</script>`;
  return frame;
}

/** Sizes each output frame from the heights they report (the message's source identifies the frame). */
export function fitFramesToContent(): void {
  window.addEventListener("message", (event: MessageEvent<unknown>) => {
    const data = event.data;
    if (typeof data !== "object" || data === null || !("tetherFrameHeight" in data) || typeof data.tetherFrameHeight !== "number") return;
    for (const frame of document.querySelectorAll("iframe")) {
      if (frame.contentWindow === event.source) frame.style.height = `${Math.min(2000, Math.ceil(data.tetherFrameHeight) + 8)}px`;
    }
  });
}
