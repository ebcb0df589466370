import { readFileSync } from "node:fs";
import { Type, type Static } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import type { Env } from "./config-readers.js";
import { ErrorCodes, configInvalid, tetherError } from "./errors.js";

/** The profile of a session that names none, and of every warm-pool worker. */
export const DEFAULT_PROFILE = "default";

const PROFILE_NAME = "^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$";
const ENV_NAME = "^[A-Za-z_][A-Za-z0-9_]*$";

/**
 * One entry of TETHER_PROFILES. Every field is optional: what a profile does
 * not set comes from the launcher's own settings (TETHER_DOCKER_*,
 * TETHER_K8S_*, TETHER_AZURE_*).
 */
export const WorkerProfileSpec = Type.Object(
  {
    /** Worker image (docker, kubernetes, azure). */
    image: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: "^\\S+$" })),
    /** CPUs per worker (docker: the CPU limit; kubernetes: request and limit; azure: vCPUs). */
    cpu: Type.Optional(Type.Number({ minimum: 0.01, maximum: 1024 })),
    /** Memory per worker in MiB (docker: the limit, swap included; kubernetes: request and limit; azure: rounded to the GiB fraction). */
    memoryMb: Type.Optional(Type.Integer({ minimum: 64, maximum: 16 * 1024 * 1024 })),
    /** GPUs per worker (kubernetes: a limit on TETHER_K8S_GPU_RESOURCE plus a toleration; docker: a device request). */
    gpu: Type.Optional(Type.Integer({ minimum: 0, maximum: 64 })),
    /** Nodes the worker pod may run on (kubernetes only). */
    nodeSelector: Type.Optional(Type.Record(Type.String(), Type.String(), { maxProperties: 32 })),
    /** Extra environment for the worker (every launcher), e.g. TETHER_PYTHON for an image whose Python lives elsewhere. */
    env: Type.Optional(Type.Record(Type.String({ pattern: ENV_NAME }), Type.String({ maxLength: 32 * 1024 }), { maxProperties: 64, additionalProperties: false })),
  },
  { additionalProperties: false },
);
export type WorkerProfileSpec = Static<typeof WorkerProfileSpec>;

const ProfilesSpec = Type.Record(Type.String({ pattern: PROFILE_NAME }), WorkerProfileSpec, { additionalProperties: false, maxProperties: 64 });
const checkProfiles = TypeCompiler.Compile(ProfilesSpec);

/** A named profile as launchers receive it (LaunchRequest.profile). */
export interface WorkerProfile extends WorkerProfileSpec {
  readonly name: string;
}

export type ProfileField = keyof WorkerProfileSpec;

/** Which profile fields each launcher applies; a profile setting another is refused at config load. */
export const PROFILE_FIELDS_BY_LAUNCHER: Readonly<Record<"local" | "docker" | "kubernetes" | "azure", readonly ProfileField[]>> = {
  // A local worker is a plain child process: nothing to size or place, only its environment.
  local: ["env"],
  docker: ["image", "cpu", "memoryMb", "gpu", "env"],
  kubernetes: ["image", "cpu", "memoryMb", "gpu", "nodeSelector", "env"],
  // GPUs on Container Apps come from the environment's workload profile, not the execution.
  azure: ["image", "cpu", "memoryMb", "env"],
};

/** Worker env the launchers set themselves: a profile may not replace them. */
const RESERVED_ENV = new Set(["TETHER_ORCHESTRATOR_URL", "TETHER_JOIN_TOKEN", "TETHER_JOIN_TOKEN_FILE", "TETHER_JOIN_TOKEN_STDIN", "TETHER_LAUNCH_ID", "TETHER_WORKSPACE"]);

/**
 * TETHER_PROFILES (JSON) or TETHER_PROFILES_FILE (a JSON file), validated
 * against WorkerProfileSpec and against what `launcher` can apply. Always
 * holds `default` (empty unless configured). Throws CONFIG_INVALID naming the
 * profile and field at the first problem.
 */
export function readProfiles(env: Env, launcher: keyof typeof PROFILE_FIELDS_BY_LAUNCHER): ReadonlyMap<string, WorkerProfile> {
  const { source, raw } = profilesSource(env);
  const profiles = new Map<string, WorkerProfile>([[DEFAULT_PROFILE, { name: DEFAULT_PROFILE }]]);
  if (raw === undefined) return profiles;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (error) {
    throw configInvalid(`${source} is not valid JSON: ${error instanceof Error ? error.message : String(error)}.`, PROFILES_EXAMPLE);
  }
  if (!checkProfiles.Check(parsed)) throw configInvalid(describeFirstError(source, parsed), PROFILES_EXAMPLE);
  const allowed = PROFILE_FIELDS_BY_LAUNCHER[launcher];
  for (const [name, spec] of Object.entries(parsed)) {
    for (const field of Object.keys(spec)) {
      if (!allowed.some((candidate) => candidate === field)) {
        throw configInvalid(
          `${source}: '${name}.${field}' cannot be applied by the ${launcher} launcher, which applies only ${allowed.join(", ")}.`,
          launcher === "local" ? "Local workers are plain processes: use TETHER_LAUNCHER=docker or kubernetes for images and resource limits." : "Remove the field, or use a launcher that applies it (see the README's profile table).",
        );
      }
    }
    for (const key of Object.keys(spec.env ?? {})) {
      if (RESERVED_ENV.has(key)) throw configInvalid(`${source}: '${name}.env.${key}' is set by the launcher itself and cannot come from a profile.`);
    }
    profiles.set(name, { ...spec, name });
  }
  return profiles;
}

/** The first schema violation in words, naming the profile and field (`gpu.memoryMb`). */
function describeFirstError(source: string, value: unknown): string {
  const first = checkProfiles.Errors(value).First();
  const segments = (first?.path ?? "").split("/").slice(1);
  const [name = "", field] = segments;
  if (!first || segments.length === 0) return `${source} must be a JSON object mapping profile names to profiles.`;
  if (segments.length === 1 && !new RegExp(PROFILE_NAME).test(name)) {
    return `${source}: profile name '${name}' must be lowercase letters, digits, '-' or '_', start and end with a letter or digit (at most 63).`;
  }
  const where = segments.join(".");
  const unexpected = /^unexpected property/i.test(first.message);
  if (unexpected && segments.length === 2) return `${source}: '${where}' is not a profile field; the fields are ${Object.keys(WorkerProfileSpec.properties).join(", ")}.`;
  if (unexpected && field === "env") return `${source}: '${where}' is not an environment variable name.`;
  return `${source}: '${where}' ${first.message.toLowerCase()}, got ${JSON.stringify(first.value)?.slice(0, 80) ?? "nothing"}.`;
}

const PROFILES_EXAMPLE = `Example: TETHER_PROFILES='{"default":{"cpu":1,"memoryMb":2048},"gpu":{"image":"registry/tether-worker:cuda","cpu":4,"memoryMb":16384,"gpu":1,"nodeSelector":{"tether.dev/pool":"gpu"}}}'`;

function profilesSource(env: Env): { source: string; raw: string | undefined } {
  const inline = env.TETHER_PROFILES?.trim();
  const file = env.TETHER_PROFILES_FILE?.trim();
  if (inline && file) throw configInvalid("Set TETHER_PROFILES or TETHER_PROFILES_FILE, not both.");
  if (inline) return { source: "TETHER_PROFILES", raw: inline };
  if (!file) return { source: "TETHER_PROFILES", raw: undefined };
  try {
    return { source: `TETHER_PROFILES_FILE (${file})`, raw: readFileSync(file, "utf8") };
  } catch (error) {
    throw configInvalid(`TETHER_PROFILES_FILE '${file}' cannot be read: ${error instanceof Error ? error.message : String(error)}.`);
  }
}

/** The profile a session asked for (absent: default); 400 TETHER_ERR_PROFILE_UNKNOWN naming the configured ones. */
export function profileNamed(profiles: ReadonlyMap<string, WorkerProfile>, name: string | undefined): WorkerProfile {
  const wanted = name ?? DEFAULT_PROFILE;
  const profile = profiles.get(wanted);
  if (profile) return profile;
  const available = [...profiles.keys()].sort().join(", ");
  throw tetherError(ErrorCodes.PROFILE_UNKNOWN, `Worker profile '${wanted.slice(0, 63)}' is not configured; available: ${available}.`, {
    hint: `Ask for one of ${available} (or leave \`profile\` out for default); profiles come from the orchestrator's TETHER_PROFILES.`,
  });
}
