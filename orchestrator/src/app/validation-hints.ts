import { isRecord, stringField } from "@tether/shared";
import { ErrorCodes, tetherError, type TetherError } from "../errors.js";

/** One ajv error as fastify hands it over (FastifySchemaValidationError). */
interface ValidationIssue {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Where an invalid value was: `body`, `params`, `querystring`, `headers`. */
type ValidationContext = string;

/**
 * Turns a schema validation failure into an error an agent can fix by itself:
 * an unknown field names itself and the closest known one ("did you mean
 * `timeoutMs`?"), a missing one names itself, and the hint lists the fields
 * the schema knows. `schema` is the route's schema for `context` (the body's
 * TypeBox schema, a plain JSON schema).
 */
export function describeValidation(issues: readonly ValidationIssue[], context: ValidationContext, schema: unknown, fallbackMessage: string): TetherError {
  const issue = issues[0];
  if (!issue) return tetherError(ErrorCodes.REQUEST_INVALID, `Invalid request: ${fallbackMessage}.`);
  const where = placeName(context, issue.instancePath);
  const known = knownFields(schemaAt(schema, issue.instancePath));
  const listing = known.length > 0 ? ` ${capitalise(where)} takes: ${known.map((name) => `\`${name}\``).join(", ")}.` : "";
  const unknown = stringField(issue.params, "additionalProperty");
  if (issue.keyword === "additionalProperties" && unknown !== undefined) {
    const closest = closestName(unknown, known);
    return tetherError(ErrorCodes.REQUEST_INVALID, `Invalid request: ${where} has an unknown field \`${unknown}\`.`, {
      hint: `${closest ? `Did you mean \`${closest}\`?` : `Remove \`${unknown}\`.`}${listing}`,
    });
  }
  const missing = stringField(issue.params, "missingProperty");
  if (issue.keyword === "required" && missing !== undefined) {
    return tetherError(ErrorCodes.REQUEST_INVALID, `Invalid request: ${where} lacks the required field \`${missing}\`.`, { hint: `Add \`${missing}\`.${listing}` });
  }
  const field = issue.instancePath === "" ? where : `\`${issue.instancePath.slice(1).replaceAll("/", ".")}\` in the ${context}`;
  return tetherError(ErrorCodes.REQUEST_INVALID, `Invalid request: ${field} ${issue.message ?? "is invalid"}.`, {
    hint: `Compare the request with its schema in GET /openapi.json.${listing}`,
  });
}

function placeName(context: ValidationContext, instancePath: string): string {
  if (instancePath === "") return `the ${context}`;
  return `\`${instancePath.slice(1).replaceAll("/", ".")}\` in the ${context}`;
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The subschema at a JSON pointer into the instance (`/metadata`, `/stdin/0`), following properties and items. */
function schemaAt(schema: unknown, instancePath: string): unknown {
  let current = schema;
  for (const segment of instancePath.split("/").slice(1)) {
    if (!isRecord(current)) return undefined;
    const properties = current.properties;
    if (isRecord(properties) && segment in properties) current = properties[segment];
    else current = current.items ?? current.additionalProperties;
  }
  return current;
}

function knownFields(schema: unknown): string[] {
  if (!isRecord(schema)) return [];
  const properties = schema.properties;
  return isRecord(properties) ? Object.keys(properties) : [];
}

/**
 * The known name closest to `name`: case-insensitive edit distance, accepting
 * at most a third of the longer name's length (at least 2), or a name that
 * one contains the other of, 3 characters or more (`timeout` → `timeoutMs`).
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const other = candidate.toLowerCase();
    const shorter = Math.min(lower.length, other.length);
    const contains = shorter >= 3 && (other.includes(lower) || lower.includes(other));
    const distance = contains ? Math.min(editDistance(lower, other), 1) : editDistance(lower, other);
    const allowed = Math.max(2, Math.floor(Math.max(lower.length, other.length) / 3));
    if (distance <= allowed && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

/** Levenshtein distance (insert, delete, substitute: 1 each). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
