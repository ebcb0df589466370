import { configInvalid } from "./errors.js";

/** The environment config is read from (tests pass their own; nothing mutates process.env). */
export type Env = Readonly<Record<string, string | undefined>>;

export const MiB = 1024 * 1024;

export function readString(env: Env, name: string, fallback: string): string {
  const value = env[name]?.trim();
  return value ? value : fallback;
}

export function readInteger(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  if (!/^\d+$/.test(raw)) throw configInvalid(`${name} must be a whole number, got '${raw}'.`);
  const value = Number(raw);
  if (value < min || value > max) throw configInvalid(`${name} must be between ${min} and ${max}, got ${value}.`);
  return value;
}

/** Docker-style sizes: bytes, or a number with k, m or g (powers of 1024), e.g. `512m`, `2g`. */
export function readByteSize(env: Env, name: string, fallback: string, min: number): number {
  const raw = readString(env, name, fallback).toLowerCase();
  const match = /^(\d+(?:\.\d+)?)([kmg]?)b?$/.exec(raw);
  const unit = { "": 1, k: 1024, m: MiB, g: 1024 * MiB }[match?.[2] ?? ""] ?? 1;
  const value = match ? Math.floor(Number(match[1]) * unit) : NaN;
  if (!Number.isFinite(value)) throw configInvalid(`${name} must be a size like 512m or 2g, got '${raw}'.`);
  if (value < min) throw configInvalid(`${name} must be at least ${min} bytes, got '${raw}'.`);
  return value;
}

/** Loopback and the names RFC 6761 reserves for local use and testing: never a real cloud. */
export function isLocalHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return host === "localhost" || host === "127.0.0.1" || host === "[::1]" || host.endsWith(".localhost") || host.endsWith(".test");
}

/** A secret a scraper sends as `Authorization: Bearer <token>`: long enough to be one. */
export function readMetricsToken(raw: string | undefined): string | undefined {
  const value = raw?.trim();
  if (!value) return undefined;
  // Never echo it: config errors end up in logs.
  if (value.length < 16 || /\s/.test(value)) {
    throw configInvalid("TETHER_METRICS_TOKEN must be at least 16 characters without whitespace.", "Generate one: openssl rand -hex 24");
  }
  return value;
}
