import type { TSchema, Static } from "@sinclair/typebox";
import { TypeCompiler, type TypeCheck } from "@sinclair/typebox/compiler";
import { ErrorCodes, type ErrorCode } from "./errors.js";

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; code: ErrorCode; message: string; requestId: string | null };

/**
 * A compiled validator for one discriminated union of messages keyed on
 * `type`. Decoding tells apart malformed JSON, an unknown `type`, and a known
 * type with bad fields, so each gets its own error code.
 */
export class MessageCodec<S extends TSchema> {
  private readonly check: TypeCheck<S>;
  private readonly knownTypes: ReadonlySet<string>;

  constructor(schema: S) {
    this.check = TypeCompiler.Compile(schema);
    this.knownTypes = new Set(collectTypeLiterals(schema));
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
    if (this.check.Check(value)) return { ok: true, value };
    const requestId = readRequestId(value);
    const type = typeof value === "object" && value !== null ? (value as { type?: unknown }).type : undefined;
    if (typeof type !== "string" || !this.knownTypes.has(type)) {
      return {
        ok: false,
        code: ErrorCodes.PROTOCOL_UNKNOWN_TYPE,
        message: `Unknown message type ${JSON.stringify(type)}; expected one of: ${[...this.knownTypes].join(", ")}.`,
        requestId,
      };
    }
    const first = this.check.Errors(value).First();
    const where = first ? `${first.path || "/"}: ${first.message}` : "invalid fields";
    return { ok: false, code: ErrorCodes.PROTOCOL_INVALID_MESSAGE, message: `Invalid '${type}' message at ${where}.`, requestId };
  }
}

function readRequestId(value: unknown): string | null {
  if (typeof value !== "object" || value === null) return null;
  const id = (value as { requestId?: unknown }).requestId;
  return typeof id === "string" ? id : null;
}

/** The `type` literals of every member of a union (or of a single object schema). */
function collectTypeLiterals(schema: TSchema): string[] {
  const members: TSchema[] = Array.isArray(schema.anyOf) ? (schema.anyOf as TSchema[]) : [schema];
  const out: string[] = [];
  for (const member of members) {
    if (Array.isArray(member.anyOf)) {
      out.push(...collectTypeLiterals(member));
      continue;
    }
    const literal = (member.properties as Record<string, TSchema> | undefined)?.type?.const;
    if (typeof literal === "string" && !out.includes(literal)) out.push(literal);
  }
  return out;
}
