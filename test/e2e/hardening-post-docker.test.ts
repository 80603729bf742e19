// Security-review findings 5, 6 and 7, end to end through dist/ and the harness:
// 5. post treats its saved state as untrusted: a tampered ledger (files and a token file outside the
//    private root, a symlink escape, another Vault address, a root elsewhere with a copied marker)
//    touches nothing outside, sends no token anywhere else, and names each refusal; the genuine
//    ledger still cleans up;
// 6. a container input that starts with '-' (`--env-file=FILE` made docker print a line of FILE)
//    is refused naming the input, and no line of the file reaches the log;
// 7. the docker CLI sees an allow-listed environment: no INPUT_*, no workflow secret, no runner
//    token, nothing unlisted (a `docker` first on PATH records the environment it was given).
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BASE_PATH } from '../support/harness/context.ts';
import { assertNoLeak, type Job, type StepResult } from '../support/harness/index.ts';
import type { OpenBao } from '../support/services/openbao.ts';
import { ALL_VALUES, MAIN, POST, VALUES, createdToken, ledgerOf, newJob, privateDirsOf, repo, startVault } from './setup.ts';

const VERIFY = path.join(repo, 'dist/verify.js');
const VERIFY_YML = path.join(repo, 'verify/action.yml');
/** Planted outside the private root as a "token file": post must never send it. */
const CANARY = 'canary-token-outside-root-5e1f9a';
const CANARY_IN_FAKE_ROOT = 'canary-token-in-fake-root-77c2d0';

interface Seen {
  method: string;
  url: string;
  token: string | undefined;
}

/** A tiny HTTP server that records every request (and its X-Vault-Token); forwards to `upstream` if given, else answers 204. */
interface Capture {
  readonly url: string;
  readonly seen: Seen[];
  stop(): Promise<void>;
}

async function capture(upstream?: string): Promise<Capture> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const token = req.headers['x-vault-token'];
      seen.push({ method: req.method ?? '', url: req.url ?? '', token: typeof token === 'string' ? token : undefined });
      if (upstream === undefined) {
        res.writeHead(204).end();
        return;
      }
      const target = new URL(req.url ?? '/', upstream);
      const forward = http.request(target, { method: req.method, headers: { ...req.headers, host: target.host } }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.writeHead(502).end());
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('capture server has no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    seen,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let vault: OpenBao;
/** In front of `vault`: the address main is given, recording what post sends. */
let front: Capture;
/** Somewhere else: a tampered ledger's Vault address. */
let evil: Capture;
let job: Job;
const outside: string[] = [];

beforeAll(async () => {
  vault = await startVault();
  front = await capture(vault.url);
  evil = await capture();
}, 120_000);
afterAll(async () => {
  await evil?.stop();
  await front?.stop();
  await vault?.stop();
});
afterEach(async () => {
  await job?.cleanup();
  for (const dir of outside.splice(0)) rmSync(dir, { recursive: true, force: true });
  front.seen.length = 0;
  evil.seen.length = 0;
});

function tempOutside(prefix: string, base = os.tmpdir()): string {
  const dir = mkdtempSync(path.join(base, prefix));
  outside.push(dir);
  return dir;
}

const warnings = (step: StepResult): string[] => step.annotations.filter((a) => a.level === 'warning').map((a) => a.message);
const errors = (step: StepResult): string[] => step.annotations.filter((a) => a.level === 'error').map((a) => a.message);

/** Runs post with `ledger` as its saved state instead of the one main saved. */
async function postWith(main: StepResult, ledger: object, opts: { env?: Record<string, string> } = {}): Promise<StepResult> {
  const saved = main.state.ledger;
  main.state.ledger = JSON.stringify(ledger);
  try {
    return await job.runPost(POST, main, opts);
  } finally {
    if (saved !== undefined) main.state.ledger = saved;
  }
}

async function approleMain(): Promise<StepResult> {
  const main = await job.runMain(MAIN, {
    url: front.url,
    method: 'approle',
    'role-id': VALUES.roleId,
    'secret-id': VALUES.roleSecretId,
    secrets: 'secret/data/ci/app password | DB_PASSWORD',
  });
  expect(main.exitCode, main.log).toBe(0);
  return main;
}

describe('post treats its saved state as untrusted (finding 5)', () => {
  it('files and a token file outside the root, and a symlink escape: nothing outside is touched, the planted token is never sent, each refusal is named', async () => {
    job = await newJob();
    const main = await approleMain();
    const token = createdToken(main);
    expect(token).not.toBe('');
    const ledger = ledgerOf(main);
    const dir = tempOutside('ps-outside-');
    const precious = path.join(dir, 'precious.txt');
    writeFileSync(precious, 'keep me\n');
    const stolen = path.join(dir, 'stolen-token');
    writeFileSync(stolen, CANARY);
    const victims = path.join(dir, 'victims');
    mkdirSync(victims);
    writeFileSync(path.join(victims, 'file'), 'keep me too\n');
    // A symlink inside the root to a directory outside it: only realpath sees where its files are.
    symlinkSync(victims, path.join(ledger.root, 'link'));
    const viaLink = path.join(ledger.root, 'link', 'file');
    // '..' out of the secrets directory, spelled so that only resolving it shows where it lands.
    const viaDots = `${ledger.secretsDir}/${path.relative(ledger.secretsDir, precious)}`;

    const post = await postWith(main, { ...ledger, files: [...ledger.files, precious, viaLink, viaDots], tokenFile: stolen });
    expect(post.exitCode, post.log).toBe(0);
    expect(readFileSync(precious, 'utf8')).toBe('keep me\n');
    expect(readFileSync(path.join(victims, 'file'), 'utf8')).toBe('keep me too\n');
    expect(readFileSync(stolen, 'utf8')).toBe(CANARY);
    expect(front.seen.filter((r) => r.token === CANARY)).toEqual([]);
    expect(post.log).not.toContain(CANARY);
    const refused = warnings(post).filter((w) => w.includes('refused from the saved state'));
    const named = (p: string): boolean => refused.some((w) => w.includes(p));
    expect(named(precious), refused.join('\n')).toBe(true);
    expect(named(viaLink), refused.join('\n')).toBe(true);
    expect(named(viaDots), refused.join('\n')).toBe(true);
    expect(
      refused.some((w) => w.includes(`the token file ${stolen}`) && /not read, no token sent/.test(w)),
      refused.join('\n'),
    ).toBe(true);
    // What is provably main's still goes: the root (the symlink in it removed, not followed).
    expect(existsSync(ledger.root)).toBe(false);
    assertNoLeak(job, [main, post], [...ALL_VALUES, token], { privateDirs: privateDirsOf([main]) });
  });

  it('another Vault address in the state: no request reaches it, and the refusal names it', async () => {
    job = await newJob();
    const main = await approleMain();
    const token = createdToken(main);
    const ledger = ledgerOf(main);
    const post = await postWith(main, { ...ledger, vaultUrl: evil.url });
    expect(post.exitCode, post.log).toBe(0);
    expect(evil.seen).toEqual([]);
    // Nor was the token sent to the real address on the tampered ledger's word.
    expect(front.seen.filter((r) => r.url.includes('revoke'))).toEqual([]);
    expect(
      warnings(post).some((w) => w.includes(`refused from the saved state: the Vault address ${evil.url}`) && w.includes(front.url)),
      warnings(post).join('\n'),
    ).toBe(true);
    assertNoLeak(job, [main, post], [...ALL_VALUES, token], { privateDirs: privateDirsOf([main]) });
  });

  it('a root elsewhere named pipeline-secrets-* with a copy of the marker is left alone; the genuine state still cleans up, twice', async () => {
    job = await newJob();
    const main = await approleMain();
    const token = createdToken(main);
    const ledger = ledgerOf(main);
    // Beside the real root (same base, same owner, 0700), carrying a byte-for-byte copy of its marker.
    const fake = tempOutside('pipeline-secrets-x', path.dirname(ledger.root));
    chmodSync(fake, 0o700);
    copyFileSync(path.join(ledger.root, '.pipeline-secrets'), path.join(fake, '.pipeline-secrets'));
    mkdirSync(path.join(fake, 'secrets'), { mode: 0o700 });
    writeFileSync(path.join(fake, 'secrets', 'keep'), 'keep me\n');
    writeFileSync(path.join(fake, 'vault-token'), CANARY_IN_FAKE_ROOT);
    const before = readdirSync(fake).sort();

    const tampered = await postWith(main, {
      ...ledger,
      root: fake,
      secretsDir: path.join(fake, 'secrets'),
      files: [path.join(fake, 'secrets', 'keep')],
      tokenFile: path.join(fake, 'vault-token'),
    });
    expect(tampered.exitCode, tampered.log).toBe(0);
    expect(readdirSync(fake).sort()).toEqual(before);
    expect(readFileSync(path.join(fake, 'secrets', 'keep'), 'utf8')).toBe('keep me\n');
    expect(front.seen.filter((r) => r.token === CANARY_IN_FAKE_ROOT)).toEqual([]);
    expect(
      warnings(tampered).some((w) => w.includes(`the private directory ${fake}`) && /marker was made for another directory/.test(w)),
      warnings(tampered).join('\n'),
    ).toBe(true);
    // The real root was not touched either: the genuine state finds everything in place.
    expect(existsSync(path.join(ledger.root, 'vault-token'))).toBe(true);

    const post = await job.runPost(POST, main);
    expect(post.exitCode, post.log).toBe(0);
    expect(warnings(post)).toEqual([]);
    expect(existsSync(ledger.root)).toBe(false);
    expect(await vault.tokenAlive(token)).toBe(false);
    expect(front.seen.some((r) => r.url.includes('revoke-self') && r.token === token)).toBe(true);
    const again = await job.runPost(POST, main);
    expect(again.exitCode, again.log).toBe(0);
    expect(warnings(again)).toEqual([]);
    expect(existsSync(fake)).toBe(true);
    assertNoLeak(job, [main, tampered, post, again], [...ALL_VALUES, token], { privateDirs: privateDirsOf([main]) });
  });
});

describe('a container input that starts with - (finding 6)', () => {
  it('verify-container and the verify sub-action refuse --env-file=FILE naming the input; no line of FILE reaches the log', async () => {
    job = await newJob();
    const hostLine = 'host-only line 9d41 with spaces';
    const hostFile = path.join(tempOutside('ps-hostfile-'), 'host.env');
    writeFileSync(hostFile, `${hostLine}\n`);
    const injected = `--env-file=${hostFile}`;
    // No daemon is needed for docker to read an --env-file: it does so before connecting.
    const env = { NPM_TOKEN_SECRET: VALUES.envSecret, DOCKER_HOST: 'unix:///nonexistent/ps-docker.sock' };
    const main = await job.runMain(MAIN, { 'env-secrets': 'NPM_TOKEN=NPM_TOKEN_SECRET', 'verify-container': injected }, { env });
    expect(main.exitCode, main.log).toBe(0);

    const verify = await job.runMain(VERIFY, { container: injected }, { env, actionYml: VERIFY_YML });
    expect(verify.exitCode).toBe(1);
    expect(errors(verify)).toEqual([`input 'container': '${injected}' starts with '-', so it is not a container name or id; refused`]);

    const post = await job.runPost(POST, main, { env });
    expect(post.exitCode, post.log).toBe(0);
    expect(
      warnings(post).some((w) =>
        w.includes(`input 'verify-container': '${injected}' starts with '-', so it is not a container name or id; refused`),
      ),
      warnings(post).join('\n'),
    ).toBe(true);
    for (const step of [main, verify, post]) {
      for (const text of [step.log, step.stdout, step.stderr, step.summary]) expect(text).not.toContain('host-only line');
    }
    assertNoLeak(job, [main, verify, post], [VALUES.envSecret], { privateDirs: privateDirsOf([main]) });
  });
});

describe('the docker CLI gets an allow-listed environment (finding 7)', () => {
  it('docker login (main) and logout (post) see no INPUT_*, no workflow secret, no runner token, nothing unlisted; DOCKER_CONFIG and the listed ones are there', async () => {
    job = await newJob({ oidc: true });
    const registry = 'registry.example.test:5000';
    const password = 'workflow-registry-secret-5b7c1e';
    const fakeDir = tempOutside('ps-fake-docker-');
    const dumps = path.join(fakeDir, 'dumps');
    mkdirSync(dumps);
    // A docker that records its environment, one file per run, and stores a login where docker would.
    writeFileSync(
      path.join(fakeDir, 'docker'),
      [
        '#!/bin/sh',
        `n=$(ls "${dumps}" | wc -l)`,
        `env > "${dumps}/$n.$1"`,
        'if [ "$1" = login ]; then',
        '  cat > /dev/null',
        `  printf '{"auths":{"${registry}":{"auth":"ZmFrZTpmYWtl"}}}\\n' > "$DOCKER_CONFIG/config.json"`,
        'fi',
        'exit 0',
        '',
      ].join('\n'),
    );
    chmodSync(path.join(fakeDir, 'docker'), 0o755);
    const env = {
      PATH: `${fakeDir}:${path.dirname(process.execPath)}:${BASE_PATH}`,
      REG_PASSWORD_SECRET: password,
      DOCKER_HOST: 'unix:///nonexistent/ps-docker.sock',
      DOCKER_PASSWORD: 'docker-password-env-3c9e71',
      UNLISTED_SETTING: 'unlisted-value-1',
      HTTPS_PROXY: 'http://127.0.0.1:9',
      no_proxy: 'localhost',
      SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt',
    };
    const main = await job.runMain(
      MAIN,
      {
        'env-secrets': 'REG_PASSWORD=REG_PASSWORD_SECRET',
        registry,
        'registry-username': 'ci-user',
        'registry-password-secret': 'REG_PASSWORD',
      },
      { env },
    );
    expect(main.exitCode, main.log).toBe(0);
    const post = await job.runPost(POST, main, { env });
    expect(post.exitCode, post.log).toBe(0);
    expect(post.summary).toContain(`Logged out of: ${registry}`);

    const files = readdirSync(dumps).sort();
    expect(files.map((f) => f.split('.')[1])).toEqual(['login', 'logout']);
    const allowed = new Set([
      ...['PATH', 'HOME', 'TMPDIR', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'SSH_AUTH_SOCK', 'XDG_RUNTIME_DIR'],
      ...['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'all_proxy'],
      ...['DOCKER_CONFIG', 'DOCKER_HOST', 'DOCKER_CONTEXT', 'DOCKER_CERT_PATH', 'DOCKER_TLS', 'DOCKER_TLS_VERIFY', 'DOCKER_API_VERSION'],
      ...['DOCKER_CUSTOM_HEADERS', 'DOCKER_BUILDKIT', 'DOCKER_DEFAULT_PLATFORM', 'DOCKER_CONTENT_TRUST', 'DOCKER_CONTENT_TRUST_SERVER'],
      ...['DOCKER_CLI_EXPERIMENTAL', 'DOCKER_CLI_HINTS', 'DOCKER_HIDE_LEGACY_COMMANDS'],
      // What sh itself sets for the script that records the environment.
      ...['PWD', 'OLDPWD', 'SHLVL', '_'],
    ]);
    for (const file of files) {
      const text = readFileSync(path.join(dumps, file), 'utf8');
      const vars = new Map(
        text
          .split('\n')
          .filter((l) => /^[A-Za-z_][A-Za-z0-9_-]*=/.test(l))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
      );
      const names = [...vars.keys()];
      expect(
        names.filter((n) => n.startsWith('INPUT_')),
        file,
      ).toEqual([]);
      expect(
        names.filter((n) => !allowed.has(n)),
        file,
      ).toEqual([]);
      for (const absent of ['REG_PASSWORD_SECRET', 'DOCKER_PASSWORD', 'UNLISTED_SETTING', 'ACTIONS_ID_TOKEN_REQUEST_TOKEN', 'GITHUB_ENV']) {
        expect(vars.has(absent), `${file}: ${absent}`).toBe(false);
      }
      expect(text.includes(password), `${file}: the registry password reached docker's environment`).toBe(false);
      expect(vars.get('DOCKER_CONFIG'), file).toBe(main.outputs['docker-config']);
      expect(vars.get('DOCKER_HOST'), file).toBe(env.DOCKER_HOST);
      expect(vars.get('HTTPS_PROXY'), file).toBe(env.HTTPS_PROXY);
      expect(vars.get('no_proxy'), file).toBe(env.no_proxy);
      expect(vars.get('SSL_CERT_FILE'), file).toBe(env.SSL_CERT_FILE);
      expect(vars.get('HOME'), file).toBe(job.home);
      expect(vars.get('PATH'), file).toBe(env.PATH);
    }
    assertNoLeak(job, [main, post], [password], { privateDirs: privateDirsOf([main]) });
  });
});
