// Small helpers shared by the Vault HTTP API double: identifiers, time and duration formatting.
import { randomBytes, randomUUID } from 'node:crypto';

const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** Random base62 string (the alphabet Vault uses for token ids, accessors and lease suffixes). */
export function base62(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 248 && out.length < n) out += B62.charAt(b % 62);
    }
  }
  return out;
}

export function uuid(): string {
  return randomUUID();
}

// https://developer.hashicorp.com/vault/docs/concepts/tokens#token-prefixes
// Service tokens start with "hvs.", batch tokens with "hvb.".
export function newServiceToken(): string {
  return `hvs.${base62(24)}`;
}

/** RFC 3339 timestamp the way Go's time.RFC3339Nano prints it (trailing fractional zeros trimmed). */
export function rfc3339(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-01-02T03:04:05.678Z
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) return iso;
  const frac = (m[2] ?? '').replace(/0+$/, '');
  return `${m[1] ?? ''}${frac ? `.${frac}` : ''}Z`;
}

/**
 * Parses a Vault duration parameter: a number of seconds (number or numeric string) or a
 * Go duration string such as "90s", "5m", "1h30m". Returns seconds, or null when invalid.
 * https://developer.hashicorp.com/vault/docs/concepts/duration-format
 */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : null;
  if (typeof v !== 'string') return null;
  const s = v.trim();
  if (s === '') return null;
  if (/^\d+$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  const unit: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600, d: 86400 };
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * (unit[m[2] ?? 's'] ?? 1);
    pos = re.lastIndex;
  }
  if (pos !== s.length) return null;
  return Math.floor(total);
}

/** Go's time.Duration.String() for whole seconds: "0s", "45s", "1m30s", "1h0m0s". */
export function goDuration(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  if (s === 0) return '0s';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return `${h}h${m}m${r}s`;
  if (m > 0) return `${m}m${r}s`;
  return `${r}s`;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function sortedUnique(xs: Iterable<string>): string[] {
  return [...new Set(xs)].sort();
}

/** Trim leading and trailing slashes. */
export function trimSlashes(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}
