// ACL policies: path globs, capability merge, priority between matching rules.
// https://developer.hashicorp.com/vault/docs/concepts/policies

export interface PolicyRule {
  path: string;
  capabilities: string[];
}

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo' | 'deny';

// https://developer.hashicorp.com/vault/docs/concepts/policies#default-policy
// The built-in "default" policy attached to every non-root token (abridged to the paths a
// client of this double can reach).
export const DEFAULT_POLICY: PolicyRule[] = [
  { path: 'auth/token/lookup-self', capabilities: ['read'] },
  { path: 'auth/token/renew-self', capabilities: ['update'] },
  { path: 'auth/token/revoke-self', capabilities: ['update'] },
  { path: 'sys/capabilities-self', capabilities: ['update'] },
  { path: 'sys/internal/ui/resultant-acl', capabilities: ['read'] },
  { path: 'sys/renew', capabilities: ['update'] },
  { path: 'sys/leases/renew', capabilities: ['update'] },
  { path: 'sys/leases/lookup', capabilities: ['update'] },
  { path: 'cubbyhole/*', capabilities: ['create', 'read', 'update', 'delete', 'list'] },
  { path: 'cubbyhole', capabilities: ['read', 'list'] },
  { path: 'sys/wrapping/wrap', capabilities: ['update'] },
  { path: 'sys/wrapping/lookup', capabilities: ['update'] },
  { path: 'sys/wrapping/unwrap', capabilities: ['update'] },
  { path: 'sys/tools/hash', capabilities: ['update'] },
  { path: 'sys/tools/hash/*', capabilities: ['update'] },
];

/** Does a policy path (with optional '+' segments and trailing '*') match a request path? */
export function patternMatches(pattern: string, path: string): boolean {
  const glob = pattern.endsWith('*');
  const body = glob ? pattern.slice(0, -1) : pattern;
  if (!body.includes('+')) return glob ? path.startsWith(body) : path === body;
  const pSegs = body.split('/');
  const sSegs = path.split('/');
  if (!glob && pSegs.length !== sSegs.length) return false;
  if (glob && sSegs.length < pSegs.length) return false;
  for (let i = 0; i < pSegs.length; i++) {
    const p = pSegs[i] ?? '';
    const s = sSegs[i] ?? '';
    const last = i === pSegs.length - 1;
    if (p === '+') continue;
    if (glob && last) {
      if (!s.startsWith(p)) return false;
    } else if (p !== s) return false;
  }
  return true;
}

function firstWildcard(p: string): number {
  const idx = [p.indexOf('+'), p.indexOf('*')].filter((i) => i >= 0);
  return idx.length ? Math.min(...idx) : Number.POSITIVE_INFINITY;
}

function plusCount(p: string): number {
  return p.split('/').filter((s) => s === '+').length;
}

// https://developer.hashicorp.com/vault/docs/concepts/policies#priority-matching
// Returns > 0 when a has higher priority than b.
export function comparePriority(a: string, b: string): number {
  const wa = firstWildcard(a);
  const wb = firstWildcard(b);
  if (wa !== wb) return wa < wb ? -1 : 1; // wildcard earlier → lower priority
  const ga = a.endsWith('*');
  const gb = b.endsWith('*');
  if (ga !== gb) return ga ? -1 : 1; // ends in * → lower
  const pa = plusCount(a);
  const pb = plusCount(b);
  if (pa !== pb) return pa > pb ? -1 : 1; // more + segments → lower
  if (a.length !== b.length) return a.length < b.length ? -1 : 1; // shorter → lower
  return a < b ? -1 : a > b ? 1 : 0; // lexicographically smaller → lower
}

export class PolicyStore {
  readonly #policies = new Map<string, PolicyRule[]>([['default', DEFAULT_POLICY]]);

  add(name: string, rules: PolicyRule[]): void {
    if (name === 'root') throw new Error('cannot update "root" policy');
    this.#policies.set(
      name,
      rules.map((r) => ({ path: r.path.replace(/^\//, ''), capabilities: [...r.capabilities] })),
    );
  }

  /** Rules of all named policies merged per path; a deny on a path wins over every grant there. */
  #merged(policies: readonly string[]): Map<string, Set<string>> {
    const merged = new Map<string, Set<string>>();
    for (const name of policies) {
      for (const rule of this.#policies.get(name) ?? []) {
        const caps = merged.get(rule.path) ?? new Set<string>();
        for (const c of rule.capabilities) caps.add(c);
        merged.set(rule.path, caps);
      }
    }
    for (const caps of merged.values()) {
      if (caps.has('deny')) {
        caps.clear();
        caps.add('deny');
      }
    }
    return merged;
  }

  /** Capabilities the policies grant on a path (['deny'] when nothing matches), like sys/capabilities. */
  capabilities(policies: readonly string[], path: string): string[] {
    if (policies.includes('root')) return ['root'];
    let best: string | undefined;
    let bestCaps: Set<string> | undefined;
    for (const [pattern, caps] of this.#merged(policies)) {
      if (!patternMatches(pattern, path)) continue;
      if (best === undefined || comparePriority(pattern, best) > 0) {
        best = pattern;
        bestCaps = caps;
      }
    }
    if (!bestCaps || bestCaps.size === 0 || bestCaps.has('deny')) return ['deny'];
    return [...bestCaps].sort();
  }

  allows(policies: readonly string[], path: string, cap: Capability): boolean {
    const caps = this.capabilities(policies, path);
    return caps.includes('root') || (!caps.includes('deny') && caps.includes(cap));
  }

  /**
   * vault/logical_system.go hasMountAccess: true when the policies grant anything but deny on the
   * mount path itself, on any rule below it, or on a '+' rule that can reach below it.
   */
  hasMountAccess(policies: readonly string[], mountPath: string): boolean {
    if (policies.includes('root')) return true;
    if (!this.capabilities(policies, mountPath).includes('deny')) return true;
    const mountSegs = mountPath.replace(/\/$/, '').split('/');
    for (const [pattern, caps] of this.#merged(policies)) {
      if (caps.size === 0 || caps.has('deny')) continue;
      if (pattern.startsWith(mountPath)) return true;
      if (pattern.includes('+')) {
        const pSegs = pattern.replace(/\*$/, '').split('/');
        if (pSegs.length < mountSegs.length) continue;
        if (mountSegs.every((s, i) => pSegs[i] === '+' || pSegs[i] === s)) return true;
      }
    }
    return false;
  }
}
