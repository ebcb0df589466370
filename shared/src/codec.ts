import type { TSchema, Static } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { errorMessage, isRecord } from "./error-detail.js";
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
      // TypeBox schemas are plain JSON Schema objects: `properties.type.const` is the literal.
      const literal: unknown = member.properties?.type?.const;
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
      return { ok: false, code: ErrorCodes.PROTOCOL_MALFORMED_JSON, message: `The frame is not valid JSON: ${errorMessage(error)}`, requestId: null };
    }
    return this.validate(parsed);
  }

  /** Validates an already parsed value. */
  validate(value: unknown): DecodeResult<Static<S>> {
    const type = isRecord(value) ? value.type : undefined;
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
    // Checked against its own member: it is that member, hence the union (the one assertion TypeBox cannot spare us).
    for (const check of checks) if (check.Check(value)) return { ok: true, value: value as Static<S> };
    // Report the first member's first error: with one member per type (the
    // usual case) that names exactly the offending field.
    const first = checks[0]?.Errors(value).First();
    const where = first ? `${first.path || "/"}: ${first.message}` : "invalid fields";
    return { ok: false, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `Invalid '${String(type)}' message at ${where}.`, requestId };
  }
}

function readRequestId(value: unknown): string | null {
  const id = isRecord(value) ? value.requestId : undefined;
  return typeof id === "string" ? id : null;
}

/** The object members of a (possibly nested) union, or the schema itself. */
function flattenUnion(schema: TSchema): TSchema[] {
  const members: unknown = schema.anyOf;
  if (!Array.isArray(members)) return [schema];
  return members.flatMap((member: TSchema) => flattenUnion(member));
}
