/**
 * The object shapes, selectors and validation rules of the fake Kubernetes
 * API server: only what Tether's launcher touches, checked the way the real
 * API server checks it (Status bodies, 422 causes), so a wrong spec fails here
 * as it would in a cluster.
 */

/** `{kind: "Status", ...}`: what the API server answers errors (and most deletes) with. */
export interface KubeStatus {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  code: number;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: { reason: string; message: string; field: string }[]; retryAfterSeconds?: number };
}

export function failureStatus(code: number, reason: string, message: string, details?: KubeStatus["details"]): KubeStatus {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, code, ...(details ? { details } : {}) };
}

export function successStatus(name: string, group: string, kind: string, uid: string): KubeStatus {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", code: 200, details: { name, group, kind, uid } };
}

/** The slice of a Job the fake reads; everything else is kept as sent. */
export interface JobBody {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; uid?: string; [key: string]: unknown };
  spec?: { template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpecBody }; [key: string]: unknown };
  status?: Record<string, unknown>;
}

export interface ContainerBody {
  name?: string;
  image?: string;
  workingDir?: string;
  env?: { name?: string; value?: string; valueFrom?: unknown }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  volumeMounts?: { name?: string; mountPath?: string; readOnly?: boolean }[];
  securityContext?: Record<string, unknown>;
}

export interface PodSpecBody {
  restartPolicy?: string;
  terminationGracePeriodSeconds?: number;
  containers?: ContainerBody[];
  volumes?: { name?: string; emptyDir?: Record<string, unknown>; secret?: { secretName?: string; defaultMode?: number; items?: { key: string; path: string }[] } }[];
  [key: string]: unknown;
}

export interface SecretBody {
  apiVersion?: string;
  kind?: string;
  type?: string;
  immutable?: boolean;
  metadata: { name?: string; namespace?: string; labels?: Record<string, string>; ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[]; [key: string]: unknown };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const QUANTITY = /^(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const FACTOR: Record<string, number> = { "": 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6 };

type Cause = { reason: string; message: string; field: string };

function quantity(raw: string): number | undefined {
  const match = QUANTITY.exec(raw);
  return match ? Number(match[1]) * (FACTOR[match[3] ?? ""] ?? Number.NaN) : undefined;
}

function checkLabels(labels: Record<string, string> | undefined, field: string, causes: Cause[]): void {
  for (const [key, value] of Object.entries(labels ?? {})) {
    const slash = key.lastIndexOf("/");
    const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
    const name = slash >= 0 ? key.slice(slash + 1) : key;
    if ((prefix !== undefined && !DNS_SUBDOMAIN.test(prefix)) || name.length > 63 || !LABEL_NAME.test(name)) {
      causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${key}": name part must consist of alphanumeric characters, '-', '_' or '.'`, field: `${field}` });
    }
    if (typeof value !== "string" || value.length > 63 || !LABEL_VALUE.test(value)) {
      causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${String(value)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'`, field: `${field}` });
    }
  }
}

/** What the API server's validation would refuse in a Job (the parts a launcher can get wrong). */
export function jobCauses(job: JobBody): Cause[] {
  const causes: Cause[] = [];
  const name = job.metadata?.name ?? "";
  if (!DNS_LABEL.test(name) || name.length > 63) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${name}": must be a DNS-1123 label of at most 63 characters`, field: "metadata.name" });
  checkLabels(job.metadata?.labels, "metadata.labels", causes);
  const template = job.spec?.template;
  checkLabels(template?.metadata?.labels, "spec.template.metadata.labels", causes);
  const pod = template?.spec;
  if (!pod) {
    causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.template.spec" });
    return causes;
  }
  if (pod.restartPolicy !== "Never" && pod.restartPolicy !== "OnFailure") {
    causes.push({ reason: "FieldValueNotSupported", message: `Unsupported value: "${String(pod.restartPolicy)}": supported values: "OnFailure", "Never"`, field: "spec.template.spec.restartPolicy" });
  }
  const volumes = new Set((pod.volumes ?? []).map((volume) => volume.name));
  if (!pod.containers?.length) causes.push({ reason: "FieldValueRequired", message: "Required value", field: "spec.template.spec.containers" });
  for (const [index, container] of (pod.containers ?? []).entries()) {
    const at = `spec.template.spec.containers[${index}]`;
    if (!container.name || !DNS_LABEL.test(container.name)) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${container.name ?? ""}"`, field: `${at}.name` });
    if (!container.image?.trim()) causes.push({ reason: "FieldValueRequired", message: "Required value", field: `${at}.image` });
    for (const [envIndex, variable] of (container.env ?? []).entries()) {
      if (!variable.name || !ENV_NAME.test(variable.name)) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${variable.name ?? ""}"`, field: `${at}.env[${envIndex}].name` });
    }
    for (const [mountIndex, mount] of (container.volumeMounts ?? []).entries()) {
      if (!volumes.has(mount.name)) causes.push({ reason: "FieldValueNotFound", message: `Not found: "${mount.name ?? ""}"`, field: `${at}.volumeMounts[${mountIndex}].name` });
    }
    const { requests = {}, limits = {} } = container.resources ?? {};
    for (const [kind, values] of [["requests", requests], ["limits", limits]] as const) {
      for (const [resource, value] of Object.entries(values)) {
        if (quantity(String(value)) === undefined) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${String(value)}": must be a quantity`, field: `${at}.resources.${kind}[${resource}]` });
      }
    }
    for (const resource of ["cpu", "memory"]) {
      const request = requests[resource] === undefined ? undefined : quantity(requests[resource]);
      const limit = limits[resource] === undefined ? undefined : quantity(limits[resource]);
      if (request !== undefined && limit !== undefined && request > limit) {
        causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${requests[resource] ?? ""}": must be less than or equal to ${resource} limit of ${limits[resource] ?? ""}`, field: `${at}.resources.requests` });
      }
    }
  }
  return causes;
}

export function secretCauses(secret: SecretBody): Cause[] {
  const causes: Cause[] = [];
  const name = secret.metadata?.name ?? "";
  if (!DNS_SUBDOMAIN.test(name) || name.length > 253) causes.push({ reason: "FieldValueInvalid", message: `Invalid value: "${name}"`, field: "metadata.name" });
  checkLabels(secret.metadata?.labels, "metadata.labels", causes);
  for (const [key, value] of Object.entries(secret.data ?? {})) {
    if (typeof value !== "string" || Buffer.from(value, "base64").toString("base64") !== value) causes.push({ reason: "FieldValueInvalid", message: "illegal base64 data", field: `data[${key}]` });
  }
  return causes;
}

/** A parsed label selector requirement: `k=v`, `k==v`, `k!=v`, `k`, `!k`. */
type Requirement = { key: string; op: "=" | "!=" | "exists" | "!exists"; value?: string };

/** Parses a label or field selector; undefined when it uses syntax the fake does not speak (set-based `in`). */
export function parseSelector(raw: string | null): Requirement[] | undefined {
  if (!raw) return [];
  const requirements: Requirement[] = [];
  for (const part of raw.split(",").map((item) => item.trim()).filter(Boolean)) {
    let match: RegExpExecArray | null;
    if ((match = /^([^=!\s]+)\s*!=\s*(.*)$/.exec(part))) requirements.push({ key: match[1] ?? "", op: "!=", value: match[2] ?? "" });
    else if ((match = /^([^=!\s]+)\s*==?\s*(.*)$/.exec(part))) requirements.push({ key: match[1] ?? "", op: "=", value: match[2] ?? "" });
    else if ((match = /^!([^=!\s]+)$/.exec(part))) requirements.push({ key: match[1] ?? "", op: "!exists" });
    else if (/^[^=!\s()]+$/.test(part)) requirements.push({ key: part, op: "exists" });
    else return undefined;
  }
  return requirements;
}

/** Whether `fields` (labels, or flattened field paths) satisfy every requirement. */
export function matches(requirements: readonly Requirement[], fields: Readonly<Record<string, string | undefined>>): boolean {
  return requirements.every((requirement) => {
    const value = fields[requirement.key];
    switch (requirement.op) {
      case "=":
        return value === requirement.value;
      case "!=":
        return value !== requirement.value;
      case "exists":
        return value !== undefined;
      case "!exists":
        return value === undefined;
    }
  });
}
