/**
 * Text a Jupyter kernel cannot take: a NUL byte, or a UTF-16 surrogate with no
 * partner (which no UTF-8 encoder can write). ipykernel drops such a message
 * silently, so the execution would hang until its timeout; refusing it at the
 * edge gives the client an error it can act on at once.
 */
// eslint-disable-next-line no-control-regex -- a NUL is exactly what this looks for
const INVALID_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export interface InvalidText {
  /** Index of the bad code unit in the string (what JavaScript's `s[i]` counts). */
  index: number;
  /** "a NUL byte" or "a lone surrogate U+D83D". */
  what: string;
}

export function findInvalidText(text: string): InvalidText | undefined {
  const match = INVALID_TEXT.exec(text);
  if (!match) return undefined;
  const unit = match[0].charCodeAt(0);
  const what = unit === 0 ? "a NUL byte" : `a lone surrogate U+${unit.toString(16).toUpperCase().padStart(4, "0")}`;
  return { index: match.index, what };
}
