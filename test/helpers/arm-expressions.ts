import { createHash } from "node:crypto";

/**
 * A small evaluator for the ARM template expressions `infra/azure/main.json`
 * uses (`[format('{0}-env', parameters('namePrefix'))]` and the like), so a
 * test can compute what a deployment would set, e.g. the orchestrator's env,
 * and feed it to the real config loader. Functions it does not know throw:
 * a template that starts using one fails the test until the evaluator learns it.
 * `reference()` results are samples (see REFERENCE_SAMPLES), not Azure's.
 */
export interface ArmContext {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  subscriptionId: string;
  resourceGroup: string;
}

/** What reference(...).<property> evaluates to, by the last property name. */
const REFERENCE_SAMPLES: Record<string, string> = {
  defaultDomain: "calmsea-1a2b3c4d.westeurope.azurecontainerapps.io",
  principalId: "11111111-2222-4333-8444-555555555555",
  clientId: "66666666-7777-4888-9999-000000000000",
  customerId: "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
  hostName: "tether-redis-sample.redis.cache.windows.net",
  fqdn: "tether-orchestrator.calmsea-1a2b3c4d.westeurope.azurecontainerapps.io",
  blob: "https://tethersnapsample.blob.core.windows.net/",
  primarySharedKey: "sample-shared-key",
};

/** A reference() (or listKeys()) result: properties resolve to samples. */
class ReferenceValue {
  constructor(readonly path: string) {}
  get(property: string): unknown {
    return REFERENCE_SAMPLES[property] ?? new ReferenceValue(`${this.path}.${property}`);
  }
  toString(): string {
    return `sample(${this.path})`;
  }
}

/** Every function name the template calls, found without evaluating (for "unknown function" checks). */
export function functionNames(expression: string): string[] {
  return [...expression.matchAll(/([A-Za-z]+)\(/g)].map((match) => match[1] ?? "");
}

/** Evaluates a template value: strings in [...] are expressions, objects and arrays recursively. */
export function evaluate(value: unknown, context: ArmContext): unknown {
  if (typeof value === "string") {
    if (value.startsWith("[[")) return value.slice(1);
    if (value.startsWith("[") && value.endsWith("]")) return new Parser(value.slice(1, -1), context).parseAll();
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => evaluate(item, context));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [String(evaluate(key, context)), evaluate(item, context)]));
  }
  return value;
}

function text(value: unknown): string {
  return value instanceof ReferenceValue ? value.toString() : String(value);
}

/** Azure's uniqueString is a base-32 hash, 13 characters; any stable 13-character hash serves a test. */
function uniqueString(...parts: unknown[]): string {
  return createHash("sha256").update(parts.map(text).join("|")).digest("hex").replace(/[^a-z0-9]/g, "").slice(0, 13);
}

function guid(...parts: unknown[]): string {
  const hex = createHash("sha256").update(parts.map(text).join("|")).digest("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

class Parser {
  private index = 0;
  constructor(
    private readonly source: string,
    private readonly context: ArmContext,
  ) {}

  parseAll(): unknown {
    const value = this.expression();
    this.skipSpace();
    if (this.index !== this.source.length) throw new Error(`Unexpected '${this.source.slice(this.index)}' in [${this.source}]`);
    return value;
  }

  private expression(): unknown {
    this.skipSpace();
    const char = this.source[this.index];
    let value: unknown;
    if (char === "'") value = this.string();
    else if (char !== undefined && /[-\d]/.test(char)) value = this.number();
    else value = this.call();
    return this.accessors(value);
  }

  private accessors(start: unknown): unknown {
    let value = start;
    for (;;) {
      this.skipSpace();
      if (this.source[this.index] === ".") {
        this.index += 1;
        const name = this.identifier();
        value = value instanceof ReferenceValue ? value.get(name) : (value as Record<string, unknown>)[name];
      } else if (this.source[this.index] === "[") {
        this.index += 1;
        const key = this.expression();
        this.expect("]");
        value = (value as Record<string, unknown>)[String(key)];
      } else {
        return value;
      }
    }
  }

  private call(): unknown {
    const name = this.identifier();
    this.expect("(");
    const args: unknown[] = [];
    this.skipSpace();
    if (this.source[this.index] !== ")") {
      for (;;) {
        args.push(this.expression());
        this.skipSpace();
        if (this.source[this.index] === ",") this.index += 1;
        else break;
      }
    }
    this.expect(")");
    return this.apply(name, args);
  }

  private apply(name: string, args: unknown[]): unknown {
    const { context } = this;
    const [a, b, c] = args;
    switch (name.toLowerCase()) {
      case "parameters":
        if (!(String(a) in context.parameters)) throw new Error(`parameters('${String(a)}') is not a parameter`);
        return context.parameters[String(a)];
      case "variables":
        if (!(String(a) in context.variables)) throw new Error(`variables('${String(a)}') is not a variable`);
        return evaluate(context.variables[String(a)], context);
      case "resourcegroup":
        return { name: context.resourceGroup, id: `/subscriptions/${context.subscriptionId}/resourceGroups/${context.resourceGroup}`, location: "westeurope" };
      case "subscription":
        return { subscriptionId: context.subscriptionId, id: `/subscriptions/${context.subscriptionId}` };
      case "format":
        return text(a).replace(/\{(\d+)\}/g, (_, index: string) => text(args[Number(index) + 1]));
      case "concat":
        return args.every(Array.isArray) ? args.flat() : args.map(text).join("");
      case "tolower":
        return text(a).toLowerCase();
      case "replace":
        return text(a).split(text(b)).join(text(c));
      case "take":
        return typeof a === "string" ? a.slice(0, Number(b)) : (a as unknown[]).slice(0, Number(b));
      case "uniquestring":
        return uniqueString(...args);
      case "guid":
        return guid(...args);
      case "json":
        return JSON.parse(text(a));
      case "if":
        return a ? b : c;
      case "equals":
        return a === b;
      case "createarray":
        return args;
      case "resourceid": {
        const [type, ...names] = args.map(text);
        const segments = (type ?? "").split("/");
        const provider = segments.shift();
        const path = segments.map((segment, index) => `${segment}/${names[index] ?? ""}`).join("/");
        return `/subscriptions/${context.subscriptionId}/resourceGroups/${context.resourceGroup}/providers/${provider ?? ""}/${path}`;
      }
      case "subscriptionresourceid":
        return `/subscriptions/${context.subscriptionId}/providers/${text(a)}/${text(b)}`;
      case "extensionresourceid":
        return `${text(a)}/providers/${text(b)}/${text(c)}`;
      case "reference":
        return new ReferenceValue(`reference(${text(a)})`);
      case "listkeys":
        return new ReferenceValue(`listKeys(${text(a)})`);
      default:
        throw new Error(`The test's ARM evaluator does not know ${name}()`);
    }
  }

  private string(): string {
    this.expect("'");
    let out = "";
    for (;;) {
      const char = this.source[this.index];
      if (char === undefined) throw new Error(`Unterminated string in [${this.source}]`);
      this.index += 1;
      if (char === "'") {
        if (this.source[this.index] !== "'") return out;
        this.index += 1;
      }
      out += char;
    }
  }

  private number(): number {
    const match = /^-?\d+/.exec(this.source.slice(this.index));
    if (!match) throw new Error(`Bad number in [${this.source}]`);
    this.index += match[0].length;
    return Number(match[0]);
  }

  private identifier(): string {
    this.skipSpace();
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.source.slice(this.index));
    if (!match) throw new Error(`Expected a name at '${this.source.slice(this.index)}' in [${this.source}]`);
    this.index += match[0].length;
    return match[0];
  }

  private expect(char: string): void {
    this.skipSpace();
    if (this.source[this.index] !== char) throw new Error(`Expected '${char}' at '${this.source.slice(this.index)}' in [${this.source}]`);
    this.index += 1;
  }

  private skipSpace(): void {
    while (this.source[this.index] === " ") this.index += 1;
  }
}
