import { configInvalid } from "./errors.js";

/** The environment a config is read from: process.env, or a plain object in tests. */
export type Env = Readonly<Record<string, string | undefined>>;

export function readString(env: Env, name: string, fallback: string): string {
  const value = env[name]?.trim();
  return value ? value : fallback;
}

/** A whole number in [min, max], or `fallback` when unset or blank; anything else names the variable. */
export function readInteger(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw configInvalid(`${name} must be a whole number, got '${raw}'.`);
  const value = Number(raw);
  if (value < min || value > max) throw configInvalid(`${name} must be between ${min} and ${max}, got ${value}.`);
  return value;
}

/** Loopback and the names RFC 6761 reserves for local use and testing: never a real cloud. */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host.endsWith(".localhost") || host.endsWith(".test");
}
