// Verification without exposure: inside a container, each secret file is
// checked for presence and byte count only (`[ -s FILE ] && wc -c < FILE`); no value is read
// back, printed or compared as text. Used by the verify step and by post's `verify-container`.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DeliveryError, errorText, InputError } from '../core/errors.ts';
import type { Exec } from '../core/exec.ts';
import { isSafeName } from '../inputs/common.ts';

export interface Expected {
  readonly name: string;
  readonly bytes: number;
}

export interface Verified {
  readonly name: string;
  readonly expected: number;
  /** Bytes seen in the container, or undefined when the file is missing or empty. */
  readonly seen: number | undefined;
}

/** Expected byte counts from the delivered files on the host (names and sizes only, never a value). */
export async function expectedFromDir(dir: string): Promise<Expected[]> {
  const out: Expected[] = [];
  for (const name of (await fs.readdir(dir)).sort()) {
    const stat = await fs.lstat(path.join(dir, name));
    if (stat.isFile()) out.push({ name, bytes: stat.size });
  }
  return out;
}

export interface VerifyOptions {
  /** The input the container came from, for messages (`container`, `verify-container`). */
  readonly input?: string;
  /** Scrubs masked values from docker's own error output before it is passed on. */
  readonly scrub?: (text: string) => string;
}

export async function verifyContainer(
  exec: Exec,
  container: string,
  mountPath: string,
  expected: readonly Expected[],
  options: VerifyOptions = {},
): Promise<Verified[]> {
  const input = options.input ?? 'container';
  // A container name or id never starts with '-'; such a value would be read by docker as one of
  // its own options (`--env-file=/some/file` prints a line of that host file in its error). It is
  // refused here, and `--` below ends docker's options before the operand all the same.
  if (container.startsWith('-'))
    throw new InputError(input, `'${container}' starts with '-', so it is not a container name or id; refused`);
  // Names are checked (our own file names) and passed as positional arguments, never spliced into
  // the script, so nothing a name holds can become shell code.
  const names = expected.map((e) => e.name).filter(isSafeName);
  const script =
    'cd "$1" || exit 3; shift; for n in "$@"; do if [ -s "$n" ]; then printf "%s %s\\n" "$n" "$(wc -c < "$n" | tr -d " ")"; else printf "%s -\\n" "$n"; fi; done';
  const scrub = options.scrub ?? ((text: string): string => text);
  // Docker's failures are the user's to act on (no such container, no shell in it, no daemon):
  // DeliveryError, so they read as one line naming the input, with no stack.
  const result = await exec('docker', ['exec', '--', container, 'sh', '-c', script, 'verify', mountPath, ...names]).catch(
    (error: unknown) => {
      throw new DeliveryError(`${input} '${container}': ${scrub(errorText(error))}`, { cause: error });
    },
  );
  if (result.exitCode !== 0) {
    const reason =
      result.exitCode === 3
        ? `${mountPath} does not exist in the container`
        : scrub(result.stderr).replace(/\s+/g, ' ').trim() || `exit code ${result.exitCode}`;
    throw new DeliveryError(`${input} '${container}': ${reason}`);
  }
  const seen = new Map<string, number | undefined>();
  for (const line of result.stdout.split('\n')) {
    const [name, count] = line.trim().split(' ');
    if (name) seen.set(name, count === undefined || count === '-' ? undefined : Number(count));
  }
  return expected.map((e) => ({ name: e.name, expected: e.bytes, seen: seen.get(e.name) }));
}

export function verifySummary(container: string, mountPath: string, results: readonly Verified[]): string {
  const ok = results.filter((r) => r.seen === r.expected).length;
  return [
    `### Pipeline Secrets: verified in container \`${container}\``,
    '',
    `${ok} of ${results.length} secret(s) present at ${mountPath} with the expected byte count (values never read back).`,
    '',
    '| name | expected bytes | in container | |',
    '| --- | ---: | ---: | --- |',
    ...results.map((r) => `| ${r.name} | ${r.expected} | ${r.seen ?? 'missing or empty'} | ${r.seen === r.expected ? '✅' : '❌'} |`),
    '',
  ].join('\n');
}
