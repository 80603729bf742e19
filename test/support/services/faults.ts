// Injected faults: transient errors, dropped connections, garbage bodies, slow or hung answers.
// What the fault proxy (fault-proxy.ts) injects in front of a real OpenBao, and which requests it
// hits (times, skip, method and path); the Vault-style error bodies for injected statuses.

export interface FaultSpec {
  method?: string;
  /** Matched against the path after /v1/ without query, e.g. 'secret/data/app' or /^auth\//. */
  path: string | RegExp;
  kind: 'status' | 'reset' | 'malformed' | 'latency' | 'hang';
  status?: number;
  /** Seconds, sent as Retry-After with 'status'. */
  retryAfter?: number;
  latencyMs?: number;
  /** How many matching requests it affects (default: unlimited). */
  times?: number;
  /**
   * Let this many matching requests through untouched first (default 0), so a fault can target
   * "the Nth request of a kind": `{ path: /^secret\//, skip: 2, times: 1 }` hits only the third.
   * Skipped requests do not spend `times`.
   */
  skip?: number;
}

interface Armed {
  spec: FaultSpec;
  skipLeft: number;
  remaining: number;
}

export class Faults {
  #armed: Armed[] = [];

  inject(f: FaultSpec): void {
    const spec: FaultSpec = { ...f };
    if (spec.path instanceof RegExp) spec.path = new RegExp(spec.path.source, spec.path.flags.replace('g', ''));
    this.#armed.push({ spec, skipLeft: Math.max(0, f.skip ?? 0), remaining: f.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.#armed = [];
  }

  /**
   * Faults that hit this request, in injection order. Each one taken spends one of its `times`;
   * a matching fault still skipping lets the request pass (and counts it) instead.
   * 'latency' lets later faults (and normal handling) follow; any other kind ends the list.
   */
  take(method: string, path: string): FaultSpec[] {
    const out: FaultSpec[] = [];
    for (const a of this.#armed) {
      if (a.remaining <= 0) continue;
      const s = a.spec;
      if (s.method && s.method.toUpperCase() !== method) continue;
      if (typeof s.path === 'string' ? s.path !== path : !s.path.test(path)) continue;
      if (a.skipLeft > 0) {
        a.skipLeft -= 1;
        continue;
      }
      a.remaining -= 1;
      out.push(s);
      if (s.kind !== 'latency') break;
    }
    this.#armed = this.#armed.filter((a) => a.remaining > 0);
    return out;
  }
}

// https://developer.hashicorp.com/vault/api-docs#http-status-codes
// Messages Vault itself gives with these codes (sdk/logical/error.go, consts).
export function faultMessages(status: number, path: string): string[] {
  switch (status) {
    case 400:
      return ['invalid request'];
    case 403:
      return ['permission denied'];
    case 404:
      return [];
    // https://developer.hashicorp.com/vault/docs/enterprise/consistency#vault-index
    case 412:
      return ['required index state not present'];
    // https://developer.hashicorp.com/vault/docs/concepts/resource-quotas
    case 429:
      return [`request path "${path}": rate limit quota exceeded`];
    case 500:
      return ['internal error'];
    case 502:
      return ['upstream rate limited'];
    case 503:
      return ['Vault is sealed'];
    default:
      return [`injected fault ${status}`];
  }
}
