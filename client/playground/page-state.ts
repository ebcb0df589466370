/**
 * What survives a reload of this tab (sessionStorage: this tab only, gone when
 * it closes): the credential, the session, the last seq seen, and the cell that
 * ran last with the seq just before it, so a reload replays that cell's output
 * from its start, exactly once (?after=), and follows it live.
 */
export interface StoredRun {
  requestId: string;
  /** Every message of the run has a larger seq. */
  afterSeq: number;
  code: string;
}

export interface PageState {
  credential: { kind: "apiKey" | "token"; value: string };
  sessionId: string;
  lastSeq?: number;
  run?: StoredRun;
}

const KEY = "tether-playground";

export function loadState(): PageState | undefined {
  const raw = sessionStorage.getItem(KEY);
  if (raw === null) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return isPageState(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export function saveState(state: PageState): void {
  sessionStorage.setItem(KEY, JSON.stringify(state));
}

export function clearState(): void {
  sessionStorage.removeItem(KEY);
}

/** `#token=tst_…&session=ses_…`: a session token handed over in the URL (removed from it at once). */
export function takeHashCredential(): { token: string; sessionId: string } | undefined {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const token = params.get("token");
  const sessionId = params.get("session");
  if (!token || !sessionId) return undefined;
  history.replaceState(null, "", location.pathname + location.search);
  return { token, sessionId };
}

function isPageState(value: unknown): value is PageState {
  if (!isRecord(value) || typeof value.sessionId !== "string" || !isRecord(value.credential)) return false;
  const { kind, value: secret } = value.credential;
  if ((kind !== "apiKey" && kind !== "token") || typeof secret !== "string") return false;
  if (value.lastSeq !== undefined && typeof value.lastSeq !== "number") return false;
  const run = value.run;
  return run === undefined || (isRecord(run) && typeof run.requestId === "string" && typeof run.afterSeq === "number" && typeof run.code === "string");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
