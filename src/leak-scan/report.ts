// SARIF 2.1.0 for the leak scan, in the shape github/codeql-action/upload-sarif accepts: one run,
// rules for leaks and for the Dockerfile lint, results with physical locations (workspace-relative
// URIs) and byte regions; archive members and images are named in the message and properties.
// What was not scanned, and a step that failed before scanning, are tool execution notifications
// of the run's invocation (executionSuccessful false): a SARIF with no result is not a clean bill.
import * as path from 'node:path';
import type { ScanOutcome } from './scan-targets.ts';

const RULES = [
  {
    id: 'leaked-secret',
    name: 'LeakedSecret',
    text: 'A value this job was given appears in an artifact, archive or image',
    level: 'error',
  },
  { id: 'secret-arg', name: 'SecretAsBuildArg', text: 'A secret passed as a build ARG stays in the image history', level: 'warning' },
  { id: 'secret-env', name: 'SecretAsEnv', text: 'A secret set with ENV stays in the image config', level: 'warning' },
  {
    id: 'credential-copy',
    name: 'CredentialFileCopied',
    text: 'A credential file copied into a layer stays in the image',
    level: 'warning',
  },
] as const;

export function sarifReport(
  result: Pick<ScanOutcome, 'findings' | 'lint' | 'problems'> & { readonly failure?: string },
  workspace: string,
  lengths: ReadonlyMap<string, number>,
): object {
  const notifications = [
    ...(result.failure !== undefined ? [{ level: 'error', message: { text: result.failure } }] : []),
    ...result.problems.map((p) => ({
      level: p.kind === 'limit' ? 'warning' : 'error',
      message: { text: `${p.path}: ${p.message}` },
    })),
  ];
  const uri = (p: string): string => {
    const file = p.split('!')[0] ?? p;
    if (file.startsWith('image:')) return file;
    const relative = path.relative(workspace, path.resolve(workspace, file));
    return relative.startsWith('..') ? `file://${path.resolve(workspace, file)}` : relative.split(path.sep).join('/');
  };
  const results = [
    ...result.findings.map((f) => {
      const member = f.path.includes('!') ? f.path.slice(f.path.indexOf('!') + 1) : undefined;
      const region: Record<string, number> = {};
      // A byte region only where the offset is into the file itself, not a member inside it.
      if (member === undefined && !f.path.startsWith('image:')) {
        region.byteOffset = f.offset;
        region.byteLength = lengths.get(`${f.name}\0${f.encoding}`) ?? 1;
        if (f.line !== undefined) region.startLine = f.line;
      }
      return {
        ruleId: 'leaked-secret',
        level: 'error',
        message: { text: `Secret '${f.name}' found (${f.encoding}) in ${f.path} at byte ${f.offset}` },
        locations: [
          { physicalLocation: { artifactLocation: { uri: uri(f.path) }, ...(Object.keys(region).length > 0 ? { region } : {}) } },
        ],
        properties: { secret: f.name, encoding: f.encoding, offset: f.offset, ...(member !== undefined ? { member } : {}) },
      };
    }),
    ...result.lint.map((l) => ({
      ruleId: l.rule,
      level: 'warning',
      message: { text: l.message },
      locations: [{ physicalLocation: { artifactLocation: { uri: uri(l.file) }, region: { startLine: l.line } } }],
    })),
  ];
  return {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'pipeline-secrets-scan',
            informationUri: 'https://github.com/pipeline-secrets/pipeline-secrets',
            rules: RULES.map((r) => ({
              id: r.id,
              name: r.name,
              shortDescription: { text: r.text },
              defaultConfiguration: { level: r.level },
            })),
          },
        },
        invocations: [
          {
            executionSuccessful: notifications.length === 0,
            ...(notifications.length > 0 ? { toolExecutionNotifications: notifications } : {}),
          },
        ],
        results,
      },
    ],
  };
}
