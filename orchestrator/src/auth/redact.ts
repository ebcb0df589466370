import { isRecord, stringField } from "@tether/shared";

/**
 * Log redaction of credentials in URLs. A query parameter is masked when its
 * name, once decoded the way a query parser decodes it, says "token"
 * (`?token=`, `?%74oken=`, `?access_token=`), or when its decoded value is one
 * the app's own parser read as `token`: what the app may authenticate with
 * never reaches a log line, however the URL spells it.
 */

const MASK = "[REDACTED]";
const SECRET_NAME = /token/i;

/** `url` with credential values masked; `parsedQuery` is the request's parsed query, when there is one. */
export function redactUrl(url: string, parsedQuery?: unknown): string {
  const start = url.indexOf("?");
  if (start < 0) return url;
  const parsedSecrets = tokenValues(parsedQuery);
  const pairs = url
    .slice(start + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq < 0) return pair;
      const rawName = pair.slice(0, eq);
      if (SECRET_NAME.test(decodeQueryPart(rawName)) || parsedSecrets.has(decodeQueryPart(pair.slice(eq + 1)))) return `${rawName}=${MASK}`;
      return pair;
    });
  return `${url.slice(0, start + 1)}${pairs.join("&")}`;
}

/** The pino `req` serializer: method, URL (redacted) and peer address; no headers at all. */
export function serializeRequest(request: unknown): { method?: string; url?: string; remoteAddress?: string } {
  if (!isRecord(request)) return {};
  const method = stringField(request, "method");
  const url = stringField(request, "url");
  const remoteAddress = stringField(request, "ip");
  return {
    ...(method !== undefined ? { method } : {}),
    ...(url !== undefined ? { url: redactUrl(url, request.query) } : {}),
    ...(remoteAddress !== undefined ? { remoteAddress } : {}),
  };
}

function tokenValues(query: unknown): Set<string> {
  const values = new Set<string>();
  if (!isRecord(query)) return values;
  for (const [name, value] of Object.entries(query)) {
    if (!SECRET_NAME.test(name)) continue;
    for (const item of Array.isArray(value) ? value : [value]) if (typeof item === "string" && item !== "") values.add(item);
  }
  return values;
}

/** Decodes like a query parser: `+` is a space; a malformed escape keeps the rest decoded byte by byte. */
function decodeQueryPart(raw: string): string {
  const text = raw.replaceAll("+", " ");
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/%([0-9a-f]{2})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}
