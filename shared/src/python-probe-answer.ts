import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";

/** What `python -c <probe>` prints: the versions of a usable runtime. */
export const PythonVersions = Type.Object({ pythonVersion: Type.String(), jupyterServer: Type.String(), ipykernel: Type.String() });
export type PythonVersions = Static<typeof PythonVersions>;

/**
 * The one JSON line `node worker/dist/main.js --probe-python` prints: the
 * contract between the worker (which knows what a usable runtime is) and
 * the orchestrator and `npm start` (which pass the answer on).
 */
export const PythonProbeAnswer = Type.Union([
  // The versions are informative: an answer without them (a stand-in worker) still names the interpreter.
  Type.Object({
    ok: Type.Literal(true),
    python: Type.String(),
    pythonVersion: Type.Optional(Type.String()),
    jupyterServer: Type.Optional(Type.String()),
    ipykernel: Type.Optional(Type.String()),
  }),
  Type.Object({ ok: Type.Literal(false), tried: Type.Array(Type.Object({ python: Type.String(), error: Type.String() })), hint: Type.String() }),
]);
export type PythonProbeAnswer = Static<typeof PythonProbeAnswer>;

const versionsCheck = TypeCompiler.Compile(PythonVersions);
const answerCheck = TypeCompiler.Compile(PythonProbeAnswer);

/** Parses the last line of `text` as probe versions; undefined when it is anything else. */
export function parsePythonVersions(text: string): PythonVersions | undefined {
  return parseLastLine(text, (value) => (versionsCheck.Check(value) ? value : undefined));
}

/** Parses the last line of `text` as a probe answer; undefined when it is anything else. */
export function parsePythonProbeAnswer(text: string): PythonProbeAnswer | undefined {
  return parseLastLine(text, (value) => (answerCheck.Check(value) ? value : undefined));
}

function parseLastLine<T>(text: string, accept: (value: unknown) => T | undefined): T | undefined {
  const line = text.trim().split("\n").pop() ?? "";
  try {
    return accept(JSON.parse(line));
  } catch {
    return undefined;
  }
}
