// The leak scan's words: the annotation text of a finding and the job summary section. A finding
// names the secret, the encoding and where it is, never the value; the verdict says "no leak
// found" only when something was scanned and nothing was left out.
import * as path from 'node:path';
import { cell } from '../core/summary-text.ts';
import type { Finding } from '../scan/scanner.ts';
import type { ScanOutcome } from './scan-targets.ts';
import { sourcesText, type ValueSources } from './values.ts';

export function findingText(f: Finding): string {
  return `secret '${f.name}' found as ${f.encoding} in ${f.path}${f.line !== undefined ? ` line ${f.line}` : ''} at byte ${f.offset}`;
}

function verdict(result: ScanOutcome): string {
  if (!result.leakScan) return "**Not scanned for leaks**: neither 'paths' nor 'images' was given (Dockerfile lint only).";
  if (result.findings.length > 0) return `**${result.findings.length} leak(s) found:**`;
  if (result.files === 0) return '**Nothing was scanned**: no file or image could be scanned (see below).';
  if (result.problems.length > 0)
    return `**Incomplete**: ${result.problems.length} input(s) not scanned, or not completely (see below); nothing found in the rest.`;
  return '**No leak found.**';
}

export function scanSummary(
  result: ScanOutcome,
  workspace: string,
  values: number,
  patterns: number,
  sources: ValueSources = { steps: [], envNames: [], vaultLines: [] },
): string {
  const from = sourcesText(sources);
  const lines = [
    '### Pipeline Secrets leak scan',
    '',
    `${result.files} input(s), ${(result.bytes / 1e6).toFixed(1)} MB scanned in ${(result.elapsedMs / 1000).toFixed(1)} s for ${values} value(s) in ${patterns} encoded form(s)${result.followed > 0 ? `, ${result.followed} symlink(s) followed` : ''}.`,
    '',
    ...(from.length > 0 ? ['The values came from:', '', ...from.map((f) => `- ${cell(f)}`), ''] : []),
    verdict(result),
    '',
  ];
  if (result.findings.length > 0) {
    lines.push('| secret | encoding | where | line | byte offset |', '| --- | --- | --- | ---: | ---: |');
    for (const f of result.findings)
      lines.push(
        `| ${cell(f.name)} | ${cell(f.encoding)} | ${cell(path.relative(workspace, f.path).startsWith('..') ? f.path : path.relative(workspace, f.path) || f.path)} | ${f.line ?? ''} | ${f.offset} |`,
      );
    lines.push('');
  }
  if (result.problems.length > 0) {
    lines.push('Not scanned, or not completely:', '', ...result.problems.map((p) => `- ${cell(p.path)}: ${cell(p.message)}`), '');
  }
  if (result.notices.length > 0) {
    lines.push('Symlinks:', '', ...result.notices.map((n) => `- ${cell(n.path)}: ${cell(n.message)}`), '');
  }
  if (result.lint.length > 0) {
    lines.push('Dockerfile warnings:', '', ...result.lint.map((l) => `- ${cell(l.file)}:${l.line} (${l.rule}): ${cell(l.message)}`), '');
  }
  return lines.join('\n');
}
