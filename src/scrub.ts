// Workspace scrub, in post: a self-hosted runner keeps its workspace between jobs, so a value a step
// wrote there (an .npmrc holding the token, a debug dump) would outlive the job. The same engine as
// the leak scan finds every value in every encoding; `scrub` decides what happens to each file.
import { constants, promises as fs } from 'node:fs';
import { buildPatterns } from './scan/patterns.ts';
import { scan, type Finding } from './scan/scanner.ts';

export type ScrubMode = 'redact' | 'delete' | 'report' | 'off';
export const SCRUB_MODES: readonly ScrubMode[] = ['redact', 'delete', 'report', 'off'];

export interface ScrubbedFile {
  readonly path: string;
  readonly findings: number;
  readonly names: string[];
  readonly action: 'redacted' | 'deleted' | 'reported' | 'left (inside an archive: cannot redact in place)';
}

export interface ScrubResult {
  readonly files: ScrubbedFile[];
  readonly problems: string[];
  readonly bytes: number;
}

export async function scrubWorkspace(
  workspace: string,
  values: ReadonlyArray<{ name: string; value: string }>,
  mode: ScrubMode,
): Promise<ScrubResult> {
  const patterns = buildPatterns(values.filter((v) => v.value !== ''));
  const lengths = new Map(patterns.map((p) => [`${p.name}\0${p.encoding}`, p.bytes.length]));
  const byFile = new Map<string, Finding[]>();
  const problems: string[] = [];
  let bytes = 0;
  for await (const event of scan([workspace], patterns)) {
    if (event.kind === 'finding') {
      const file = event.path.split('!')[0] ?? event.path;
      byFile.set(file, [...(byFile.get(file) ?? []), event]);
    } else if (event.kind === 'done') bytes = event.bytes;
    else problems.push(`${event.path}: ${event.message}`);
  }
  const files: ScrubbedFile[] = [];
  for (const [file, findings] of byFile) {
    const names = [...new Set(findings.map((f) => f.name))];
    const inArchive = findings.some((f) => f.path.includes('!'));
    let action: ScrubbedFile['action'] = 'reported';
    try {
      if (mode === 'delete') {
        await fs.unlink(file);
        action = 'deleted';
      } else if (mode === 'redact' && !inArchive) {
        await redact(
          file,
          findings.map((f) => [f.offset, lengths.get(`${f.name}\0${f.encoding}`) ?? 0] as const),
        );
        action = 'redacted';
      } else if (mode === 'redact') {
        action = 'left (inside an archive: cannot redact in place)';
      }
    } catch (error) {
      problems.push(`${file}: ${mode} failed (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    files.push({ path: file, findings: findings.length, names, action });
  }
  return { files, problems, bytes };
}

/** Overwrites each occurrence in place with '*' of the same length: every other byte stays put. */
async function redact(file: string, spans: ReadonlyArray<readonly [number, number]>): Promise<void> {
  // O_NOFOLLOW: the scan never follows symlinks, and neither does the write.
  const handle = await fs.open(file, constants.O_RDWR | constants.O_NOFOLLOW);
  try {
    for (const [offset, length] of spans) {
      if (length > 0) await handle.write(Buffer.alloc(length, 0x2a), 0, length, offset);
    }
  } finally {
    await handle.close();
  }
}
