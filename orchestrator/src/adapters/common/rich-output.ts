/**
 * Rich Jupyter outputs (mime bundles) as what an LLM client can take: raster
 * images as base64 with their type, everything else as text. A DataFrame's
 * bundle has text/plain beside text/html: the plain repr is what a model
 * reads best. HTML alone is turned into text (tables as tab-separated rows).
 */
export type RenderedOutput = { kind: "image"; mimeType: string; base64: string } | { kind: "text"; text: string };

/** Raster types MCP clients (and models) take as images, in order of preference. */
const RASTER_TYPES = ["image/png", "image/jpeg", "image/gif", "image/webp"] as const;
/** SVG beyond this is not worth a model's context as text. */
export const MAX_SVG_TEXT_CHARS = 20_000;

export function renderMimeBundle(data: Readonly<Record<string, unknown>>): RenderedOutput | undefined {
  for (const mimeType of RASTER_TYPES) {
    const value = data[mimeType];
    if (typeof value === "string") return { kind: "image", mimeType, base64: value.replace(/\s+/g, "") };
  }
  const svg = textOf(data["image/svg+xml"]);
  if (svg !== undefined) {
    return {
      kind: "text",
      text: svg.length <= MAX_SVG_TEXT_CHARS ? `[image/svg+xml]\n${svg}` : `[image/svg+xml, ${svg.length} characters: too large to show; save it to a file and read it in parts]`,
    };
  }
  const plain = textOf(data["text/plain"]);
  if (plain !== undefined) return { kind: "text", text: plain };
  const markdown = textOf(data["text/markdown"]);
  if (markdown !== undefined) return { kind: "text", text: markdown };
  if (data["application/json"] !== undefined) return { kind: "text", text: JSON.stringify(data["application/json"], null, 2) };
  const html = textOf(data["text/html"]);
  if (html !== undefined) return { kind: "text", text: htmlToText(html) };
  const latex = textOf(data["text/latex"]);
  if (latex !== undefined) return { kind: "text", text: latex };
  const types = Object.keys(data);
  return types.length > 0 ? { kind: "text", text: `[output of type ${types.join(", ")}]` } : undefined;
}

/** Jupyter sends multi-line text either as a string or as a list of lines. */
function textOf(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((line) => typeof line === "string")) return value.join("");
  return undefined;
}

const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: " ", "#39": "'" };

/**
 * Readable text from HTML: scripts and styles dropped, block ends and `<br>`
 * become line breaks, table cells are separated by tabs, tags removed,
 * entities decoded, runs of blank lines collapsed.
 */
export function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1\s*>/gi, "")
    .replace(/<!--[\s\S]*?-->/g, "")
    .replace(/<br\s*\/?>/gi, "\n")
    .replace(/<\/(td|th)\s*>\s*/gi, "\t")
    .replace(/<\/(p|div|tr|li|h[1-6]|table|thead|tbody|pre|blockquote)\s*>/gi, "\n")
    .replace(/<li\b[^>]*>/gi, "- ")
    .replace(/<[^>]+>/g, "")
    .replace(/&(#x[0-9a-f]+|#\d+|[a-z]+\d*);/gi, (entity, name: string) => decodeEntity(name) ?? entity)
    .replace(/[ \t]+\n/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

function decodeEntity(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower.startsWith("#x")) return codePoint(Number.parseInt(lower.slice(2), 16));
  if (lower.startsWith("#")) return codePoint(Number.parseInt(lower.slice(1), 10));
  return ENTITIES[lower];
}

function codePoint(value: number): string | undefined {
  return Number.isInteger(value) && value > 0 && value <= 0x10ffff ? String.fromCodePoint(value) : undefined;
}

const MIME_BY_EXTENSION: Readonly<Record<string, string>> = {
  txt: "text/plain", md: "text/markdown", csv: "text/csv", tsv: "text/tab-separated-values", json: "application/json",
  yaml: "application/yaml", yml: "application/yaml", xml: "application/xml", html: "text/html", htm: "text/html",
  py: "text/x-python", js: "text/javascript", ts: "text/plain", log: "text/plain", ipynb: "application/x-ipynb+json",
  png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp", svg: "image/svg+xml",
  pdf: "application/pdf", zip: "application/zip", gz: "application/gzip", parquet: "application/vnd.apache.parquet",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", pkl: "application/octet-stream",
};

/** The content type a file name suggests; application/octet-stream when unknown. */
export function mimeTypeOf(path: string): string {
  const dot = path.lastIndexOf(".");
  const extension = dot >= 0 && dot > path.lastIndexOf("/") ? path.slice(dot + 1).toLowerCase() : "";
  return MIME_BY_EXTENSION[extension] ?? "application/octet-stream";
}
