import type { TSchema, Static } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ErrorCodes, type ErrorCode } from "./errors.js";

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string; requestId: string | null };

/**
 * A compiled validator for one discriminated union of messages keyed on
 * `type`. Decoding tells apart malformed JSON, an unknown `type`, and a known
 * type with bad fields, so each gets its own error code. Each frame is checked
 * only against the members with its `type`, which is both faster than the
 * whole union and yields an error naming the bad field.
 */
export class MessageCodec<S extends TSchema> {
  private readonly checksByType: ReadonlyMap<string, TypeCheck<TSchema>[]>;

  constructor(schema: S) {
    const byType = new Map<string, TypeCheck<TSchema>[]>();
    for (const member of flattenUnion(schema)) {
      const literal = (member.properties as Record<string, TSchema> | undefined)?.type?.const;
      if (typeof literal !== "string") throw new Error("MessageCodec needs object members with a literal `type`.");
      const checks = byType.get(literal) ?? [];
      checks.push(TypeCompiler.Compile(member));
      byType.set(literal, checks);
    }
    this.checksByType = byType;
  }

  /** Parses and validates one text frame. */
  decode(text: string): DecodeResult<Static<S>> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      return { ok: false, code: ErrorCodes.PROTOCOL_MALFORMED_JSON, message: `The frame is not valid JSON: ${(error as Error).message}`, requestId: null };
    }
    return this.validate(parsed);
  }

  /** Validates an already parsed value. */
  validate(value: unknown): DecodeResult<Static<S>> {
    const type = typeof value === "object" && value !== null && !Array.isArray(value) ? (value as { type?: unknown }).type : undefined;
    const checks = typeof type === "string" ? this.checksByType.get(type) : undefined;
    const requestId = readRequestId(value);
    if (!checks) {
      return {
        ok: false,
        code: ErrorCodes.PROTOCOL_UNKNOWN_TYPE,
        message: `Unknown message type ${JSON.stringify(type ?? null)}; expected one of: ${[...this.checksByType.keys()].join(", ")}.`,
        requestId,
      };
    }
    for (const check of checks) if (check.Check(value)) return { ok: true, value: value as Static<S> };
    // Report the first member's first error: with one member per type (the
    // usual case) that names exactly the offending field.
    const first = checks[0]?.Errors(value).First();
    const where = first ? `${first.path || "/"}: ${first.message}` : "invalid fields";
    return { ok: false, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `Invalid '${String(type)}' message at ${where}.`, requestId };
  }
}

function readRequestId(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return null;
  const id = (value as { requestId?: unknown }).requestId;
  return typeof id === "string" ? id : null;
}

/** The object members of a (possibly nested) union, or the schema itself. */
function flattenUnion(schema: TSchema): TSchema[] {
  if (!Array.isArray(schema.anyOf)) return [schema];
  return (schema.anyOf as TSchema[]).flatMap(flattenUnion);
}
