/** A random execution id, `sdk_` + 24 hex digits (crypto.getRandomValues: also in non-secure browser contexts). */
export function newRequestId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `sdk_${Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}
