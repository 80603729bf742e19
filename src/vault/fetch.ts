// Turns secret lines into secrets: one read per distinct path (and version), concurrently, then
// the selected keys. All or nothing: any failure of a required secret fails the whole fetch.
import { decodeSelected, maskTexts, type Decoded } from '../core/decode.ts';
import { SecretError, VaultError } from '../core/errors.ts';
import { inert } from '../core/log-safe.ts';
import { mapLimit } from '../core/pool.ts';
import { normalizeName, type VaultSecretLine } from '../inputs/secret-spec.ts';
import type { VaultClient } from './client.ts';
import {
  deletedVersionText,
  interpret,
  isExplicitDataPath,
  readRaw,
  readSecret,
  resolveMounts,
  type MountInfo,
  type ReadResult,
} from './kv.ts';
import { explainRefusal, tokenAccepted } from './refusal.ts';

export type SecretSource =
  | {
      readonly kind: 'vault';
      readonly line: number;
      /** The request it came from (path and version, or write path and body). */
      readonly requestKey: string;
      readonly path: string;
      readonly readPath: string;
      readonly key: string;
      readonly kvVersion: 1 | 2 | undefined;
      readonly version: number | undefined;
      readonly leaseId: string | undefined;
    }
  | { readonly kind: 'env'; readonly line: number; readonly envVar: string };

export interface Secret {
  /** File and output name. */
  readonly name: string;
  /** Env var and env-file name. */
  readonly envName: string;
  /**
   * The value as text: as stored, or decoded (`?encoding=`) when the decoded bytes are text. For
   * decoded bytes that are not text it is the stored text, and never handed over (core/decode.ts isBinary).
   */
  readonly value: string;
  /** Set for a decoded line: the bytes its file holds, and the stored form. */
  readonly decoded?: Decoded;
  readonly source: SecretSource;
  /** Step output name when it is not `name` (a `pki` entry's files: vault-action's ROLE_cert...). */
  readonly outputName?: string;
  /** A `pki` entry's PEM file: several lines by nature, left out of the env-file without a warning. */
  readonly pem?: true;
}

export interface Lease {
  readonly leaseId: string;
  readonly path: string;
  readonly duration: number | undefined;
  readonly renewable: boolean;
}

/** What was read for one request key, without values: what the renewal agent starts from. */
export interface SourceState {
  readonly key: string;
  readonly readPath: string;
  readonly kvVersion: 1 | 2 | undefined;
  readonly version: number | undefined;
  readonly lease: Lease | undefined;
}

export interface FetchOutcome {
  readonly secrets: Secret[];
  readonly leases: Lease[];
  readonly warnings: string[];
  readonly sources: SourceState[];
}

export interface FetchDeps {
  /** Called with each value as soon as it is known, before anything else can see it. */
  readonly onValue: (value: string) => void;
  readonly debug: (message: string) => void;
}

/** One request per distinct key: path and version for reads, path and body for writes. */
export function readKey(line: Pick<VaultSecretLine, 'path' | 'version' | 'body'>): string {
  if (line.body !== undefined) return `write ${line.path} ${JSON.stringify(line.body)}`;
  return line.version === undefined ? line.path : `${line.path}?version=${line.version}`;
}

export async function fetchVaultSecrets(
  client: VaultClient,
  lines: readonly VaultSecretLine[],
  concurrency: number,
  deps: FetchDeps,
): Promise<FetchOutcome> {
  const plans = new Map<
    string,
    { path: string; version: number | undefined; body: Record<string, unknown> | undefined; line: number; optional: boolean }
  >();
  // The lines each request answers, in order: looked up once per answer (not every line per answer).
  const linesOf = new Map<string, VaultSecretLine[]>();
  for (const line of lines) {
    const key = readKey(line);
    const same = linesOf.get(key);
    if (same) same.push(line);
    else linesOf.set(key, [line]);
    const known = plans.get(key);
    // A path is optional only if every line that reads it is.
    plans.set(key, {
      path: line.path,
      version: line.version,
      body: line.body,
      line: known?.line ?? line.line,
      optional: (known?.optional ?? true) && line.optional,
    });
  }
  const unknown: MountInfo = { mount: undefined, type: undefined, kvVersion: undefined };
  const mounts = resolveMounts(
    client,
    [...plans.values()].filter((p) => p.body === undefined).map((p) => p.path),
    concurrency,
  );
  // Mount lookups and reads share one concurrency budget's worth of sockets; a read that needs no
  // path rewriting (already `<mount>/data/...`) need not wait for its lookup: it saves one round trip.
  mounts.catch(() => {});
  const warnings: string[] = [];
  // Asked once, on the first 403: whether Vault still knows the token at all.
  let tokenChecked: Promise<boolean> | undefined;
  const tokenValid = (): Promise<boolean> => (tokenChecked ??= tokenAccepted(client));
  const entries = [...plans.entries()];
  const results = await mapLimit(entries, concurrency, async ([key, plan]) => {
    try {
      let result: ReadResult;
      if (plan.body !== undefined) {
        // Engines that issue on POST (aws/sts, pki/issue): the answer is the credential itself.
        result = interpret(plan, plan.path, (await client.write(plan.path, plan.body)) ?? {}, unknown);
      } else if (isExplicitDataPath(plan.path)) {
        // Sent before the mount lookup answers; whether a retry is safe (a KV read) is asked of it
        // only if a retry comes up.
        const isKv = async (): Promise<boolean> => (await mounts).get(plan.path)?.kvVersion !== undefined;
        const raw = await readRaw(client, plan.path, plan.version, isKv);
        result = interpret(plan, plan.path, raw, (await mounts).get(plan.path) ?? unknown);
      } else {
        result = await readSecret(client, plan, (await mounts).get(plan.path) ?? unknown);
      }
      // Mask what is selected as soon as it arrives, in the form it is delivered in: a later error
      // message must not be able to show it. Fields not selected are not registered: they are never
      // delivered, and a field like `flag: true` would mask every "true" in the job's log.
      for (const line of linesOf.get(key) ?? []) for (const value of selectedValues(line, result)) deps.onValue(value);
      deps.debug(`read ${result.readPath}${result.version !== undefined ? ` (version ${result.version})` : ''}`);
      return result;
    } catch (error) {
      // A deleted or destroyed KV v2 version is a 404 too, but one worth naming: it was there.
      const deleted = error instanceof VaultError && error.kv ? deletedVersionText(error.path, error.kv) : undefined;
      if (plan.optional && error instanceof VaultError && error.status === 404) {
        warnings.push(`secrets line ${plan.line}: ${deleted ?? `'${plan.path}' not found`}; skipped (optional)`);
        return undefined;
      }
      if (deleted !== undefined) throw new SecretError(`secrets line ${plan.line}: ${deleted}`, { cause: error });
      if (error instanceof VaultError && (error.status === 403 || error.status === 404)) {
        const explained = new VaultError(error.path, await explainRefusal(error, plan, tokenValid), error.status, { cause: error });
        explained.afterUncertainTry = error.afterUncertainTry;
        explained.kv = error.kv;
        throw explained;
      }
      throw error;
    }
  });
  const byKey = new Map<string, ReadResult | undefined>();
  entries.forEach(([key], index) => byKey.set(key, results[index]));

  const secrets: Secret[] = [];
  for (const line of lines) {
    const result = byKey.get(readKey(line));
    if (result === undefined) continue;
    secrets.push(...select(line, result, warnings));
  }
  const leases: Lease[] = [];
  for (const result of results) {
    if (result?.leaseId)
      leases.push({ leaseId: result.leaseId, path: result.readPath, duration: result.leaseDuration, renewable: result.renewable });
  }
  const sources: SourceState[] = [];
  entries.forEach(([key], index) => {
    const r = results[index];
    if (!r) return;
    const lease = r.leaseId ? { leaseId: r.leaseId, path: r.readPath, duration: r.leaseDuration, renewable: r.renewable } : undefined;
    sources.push({ key, readPath: r.readPath, kvVersion: r.kvVersion, version: r.version, lease });
  });
  return { secrets, leases, warnings, sources };
}

export function select(line: VaultSecretLine, result: ReadResult, warnings: string[]): Secret[] {
  const source = (key: string): SecretSource => ({
    kind: 'vault',
    line: line.line,
    requestKey: readKey(line),
    path: line.path,
    readPath: result.readPath,
    key,
    kvVersion: result.kvVersion,
    version: result.version,
    leaseId: result.leaseId,
  });
  // Strings as they are, other JSON values as JSON text (as vault-action delivers them), or decoded (`?encoding=`).
  const where = (key: string) => (): string => `secrets line ${line.line}: the value of key '${inert(key)}' at '${inert(result.readPath)}'`;
  const delivered = (key: string, value: unknown): ReturnType<typeof decodeSelected> => decodeSelected(value, line.encoding, where(key));
  if (line.selector.kind === 'all') {
    const { prefix, keepCase } = line.selector;
    return Object.entries(result.data)
      .filter(([, value]) => value !== null && value !== undefined)
      .map(([key, value]) => {
        if (normalizeName(key) === '') {
          // A key is not secret, but it may hold anything: quoted as JSON, so the message stays one line.
          throw new SecretError(
            `secrets line ${line.line}: key ${JSON.stringify(key)} at '${result.readPath}' gives an empty name under '${keepCase ? '**' : '*'}' (a name keeps only the key's letters, digits, '_' and '-', and '.' as '__'); rename the key, or select it on its own line with '| NAME'`,
          );
        }
        const name = prefix + normalizeName(key);
        return { name, envName: keepCase ? name : name.toUpperCase(), ...delivered(key, value), source: source(key) };
      });
  }
  const key = line.selector.key;
  const value = lookup(result.data, key);
  if (value === undefined || value === null) {
    // Key names come from whoever wrote the secret: inert (log-safe.ts), so this message stays one
    // line wherever it goes (the agent's log file too, which post prints).
    const available = Object.keys(result.data).sort().map(inert).join(', ') || 'none';
    const message = `secrets line ${line.line}: key '${inert(key)}' not found at '${inert(result.readPath)}' (keys there: ${available})`;
    if (line.optional) {
      warnings.push(`${message}; skipped (optional)`);
      return [];
    }
    throw new SecretError(message);
  }
  const name = line.name ?? normalizeName(key);
  // vault-action: an explicit `| NAME` is used as written for env too; a derived name is upper-cased.
  return [{ name, envName: line.name ?? normalizeName(key, true), ...delivered(key, value), source: source(key) }];
}

/**
 * A key as written, else a dotted path into nested objects (vault-action's JSONata path). A step
 * may enter a string holding a JSON object, as a service-account key stored as one value is.
 */
function lookup(data: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(data, key)) return data[key];
  let node: unknown = data;
  for (const part of key.split('.')) {
    if (typeof node === 'string') node = parseObject(node);
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, part)) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function parseObject(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The texts to mask of what `line` selects (a decoded one's stored form too: maskTexts); none when selecting fails (reported later). */
function selectedValues(line: VaultSecretLine, result: ReadResult): string[] {
  try {
    return select(line, result, []).flatMap((secret) => (secret.decoded ? maskTexts(secret.decoded) : [secret.value]));
  } catch {
    return [];
  }
}
