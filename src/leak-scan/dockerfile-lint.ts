// Dockerfile lint for the common ways a build leaks a secret: a secret passed as ARG or ENV (it
// stays in the image config, its history and provenance) and COPY/ADD of credential files (they
// stay in a layer). Each finding names file:line and the BuildKit secret mount to use instead.

export interface LintFinding {
  readonly file: string;
  readonly line: number;
  readonly rule: 'secret-arg' | 'secret-env' | 'credential-copy';
  readonly message: string;
}

const CREDENTIAL_NAME = /(TOKEN|PASSW(OR)?D|PASSWD|SECRET|API_?KEY|PRIVATE_?KEY|ACCESS_?KEY|CREDENTIALS?|AUTH)/i;
const CREDENTIAL_FILE =
  /(^|\/)(\.npmrc|\.yarnrc(\.yml)?|\.pypirc|\.netrc|\.git-credentials|\.env(\.[\w.-]+)?|id_(rsa|dsa|ecdsa|ed25519)|[^/]*\.(pem|key|p12|pfx)|\.docker\/config\.json|credentials(\.json)?|\.aws\/credentials|kubeconfig)$/i;

/** Instructions with continuation lines joined, each with the line it starts on. */
function instructions(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  const lines = text.split(/\r?\n/);
  let current: { line: number; text: string } | undefined;
  let heredoc: string | undefined;
  lines.forEach((raw, index) => {
    if (heredoc !== undefined) {
      if (raw.trim() === heredoc) heredoc = undefined;
      return;
    }
    const trimmed = raw.trim();
    if (current === undefined && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (current !== undefined && trimmed.startsWith('#')) return; // comments inside a continuation
    const body = trimmed.endsWith('\\') ? trimmed.slice(0, -1) : trimmed;
    current = current ? { line: current.line, text: `${current.text} ${body}` } : { line: index + 1, text: body };
    const marker = /<<-?["']?([A-Za-z_][A-Za-z0-9_]*)["']?/.exec(body);
    if (marker) heredoc = marker[1];
    if (!trimmed.endsWith('\\')) {
      out.push(current);
      current = undefined;
    }
  });
  if (current) out.push(current);
  return out;
}

function argNames(rest: string): string[] {
  return rest
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => w.split('=')[0] ?? '');
}

function envNames(rest: string): string[] {
  // `ENV NAME value` (one pair) or `ENV A=1 B=2`.
  if (!/^[^\s=]+=/.test(rest.trim())) return [rest.trim().split(/\s+/)[0] ?? ''];
  return [...rest.matchAll(/(?:^|\s)([^\s=]+)=/g)].map((m) => m[1] ?? '');
}

/** Sources of COPY/ADD: the words before the destination, skipping --flags. */
function copySources(rest: string): string[] {
  const json = rest.trim().startsWith('[');
  let words: string[];
  if (json) {
    try {
      words = JSON.parse(rest.trim()) as string[];
    } catch {
      return [];
    }
  } else {
    words = rest.split(/\s+/).filter((w) => w !== '' && !w.startsWith('--'));
  }
  return words.slice(0, -1);
}

export function lintDockerfile(file: string, text: string, secretNames: readonly string[] = []): LintFinding[] {
  const delivered = new Set(secretNames.map((n) => n.toUpperCase()));
  const findings: LintFinding[] = [];
  for (const { line, text: instruction } of instructions(text)) {
    const match = /^([A-Za-z]+)\s+(.*)$/.exec(instruction);
    if (!match) continue;
    const keyword = (match[1] ?? '').toUpperCase();
    const rest = match[2] ?? '';
    if (keyword === 'ARG' || keyword === 'ENV') {
      for (const name of keyword === 'ARG' ? argNames(rest) : envNames(rest)) {
        if (name === '' || !(delivered.has(name.toUpperCase()) || CREDENTIAL_NAME.test(name))) continue;
        const id = name.toLowerCase();
        findings.push({
          file,
          line,
          rule: keyword === 'ARG' ? 'secret-arg' : 'secret-env',
          message: `${keyword} ${name} ${delivered.has(name.toUpperCase()) ? 'is a secret delivered in this job' : 'looks like a credential'}: its value stays in the image's config, history and provenance. Use a BuildKit secret instead: RUN --mount=type=secret,id=${id},env=${name} ... (or read /run/secrets/${id}), built with --secret id=${id},src=FILE`,
        });
      }
    } else if (keyword === 'COPY' || keyword === 'ADD') {
      for (const source of copySources(rest)) {
        if (!CREDENTIAL_FILE.test(source.replace(/\/+$/, ''))) continue;
        const base = source.split('/').pop() ?? source;
        findings.push({
          file,
          line,
          rule: 'credential-copy',
          message: `${keyword} ${source} puts a credential file in an image layer, where it stays even if a later step deletes it. Mount it for the one RUN that needs it: RUN --mount=type=secret,id=${base.replace(/^\./, '')},target=/root/${base} ...`,
        });
      }
    }
  }
  return findings;
}
