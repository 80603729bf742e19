// `npm run demo`: a real run of the bundled action, main then post, through the runner harness
// against a real OpenBao dev server (installed into .cache/ on first use), showing what a user
// would see.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Job } from '../test/support/harness/index.ts';
import { OpenBao } from '../test/support/services/openbao.ts';
import { ensureOpenBao, OPENBAO_VERSION } from '../test/support/services/openbao-install.ts';

const repo = path.resolve(import.meta.dirname, '..');
const say = (title: string): void => console.log(`\n\x1b[1m== ${title}\x1b[0m`);

await ensureOpenBao([OPENBAO_VERSION]);
const vault = await OpenBao.start();
await vault.enableKv('legacy', 1);
await vault.putKv('secret', 'ci/db', { username: 'app', password: 'demo-Pa55word-9f3k' });
await vault.putKv('secret', 'ci/npm', { token: 'npm_demoTokenAbCdEf0123456789' });
await vault.putKv('secret', 'ci/tls', {
  key: '-----BEGIN PRIVATE KEY-----\nMIIEdemoKEYline1\nMIIEdemoKEYline2\n-----END PRIVATE KEY-----\n',
});
await vault.putKv('legacy', 'registry', { password: 'legacy-registry-pw-77' });
await vault.addPolicy('ci', [
  { path: 'secret/data/ci/*', capabilities: ['read'] },
  { path: 'legacy/*', capabilities: ['read'] },
]);
await vault.addAppRole('approle', 'ci', { roleId: 'demo-role-id', secretId: 'demo-secret-id-5x7', policies: ['ci'], ttl: '15m' });

const job = await Job.create({ debug: false });
try {
  const inputs = {
    url: vault.url,
    method: 'approle',
    'role-id': 'demo-role-id',
    'secret-id': 'demo-secret-id-5x7',
    secrets: [
      'secret/data/ci/db password | DB_PASSWORD',
      'secret/ci/npm token | NPM_TOKEN',
      'secret/ci/tls key | TLS_KEY',
      'legacy/registry password | REGISTRY_PASSWORD',
    ].join('\n'),
  };
  say('workflow step');
  console.log('- uses: pipeline-secrets/pipeline-secrets@v1\n  with:');
  for (const [k, v] of Object.entries(inputs))
    console.log(`    ${k}: ${v.includes('\n') ? `|\n      ${v.split('\n').join('\n      ')}` : v}`);

  const main = await job.runMain(path.join(repo, 'dist/main.js'), inputs);
  say(`main step log, as the runner shows it (exit ${main.exitCode})`);
  console.log(main.log.trimEnd());
  say('job summary');
  console.log(main.summary.trimEnd());

  const dir = main.outputs['secrets-dir'] ?? '';
  say(`delivered files in ${dir}`);
  const dirMode = ((await fs.stat(dir)).mode & 0o777).toString(8);
  console.log(`directory mode ${dirMode}`);
  for (const name of (await fs.readdir(dir)).sort()) {
    const stat = await fs.stat(path.join(dir, name));
    console.log(`  ${(stat.mode & 0o777).toString(8)}  ${String(stat.size).padStart(4)} bytes  ${name}`);
  }
  const later = await job.runShell(
    'for f in "$PIPELINE_SECRETS_DIR"/*; do printf "%s: %s bytes\\n" "$(basename "$f")" "$(wc -c < "$f")"; done',
  );
  say('a later step verifies by presence and byte count, never by value');
  console.log(later.log.trimEnd());

  const careless = await job.runShell(
    'echo "password: $(cat "$PIPELINE_SECRETS_DIR/DB_PASSWORD")"; printf "docker auth: "; printf "ci:%s" "$(cat "$PIPELINE_SECRETS_DIR/DB_PASSWORD")" | base64; head -2 "$PIPELINE_SECRETS_DIR/TLS_KEY"',
  );
  say('a careless step prints a secret, its base64 in a docker auth, and a key: the log masks them');
  console.log(careless.log.trimEnd());

  const afterMain = new Set(await vault.liveAccessors());
  const post = await job.runPost(path.join(repo, 'dist/post.js'), main);
  say(`post step log (exit ${post.exitCode})`);
  console.log(post.log.trimEnd());
  say('after post');
  const left = await fs.lstat(dir).then(
    () => 'STILL THERE',
    () => 'gone',
  );
  console.log(`secrets directory: ${left}`);
  const alive = (await vault.liveAccessors()).filter((a) => afterMain.has(a));
  console.log(`Vault tokens created by the login and still alive: ${alive.length}`);
} finally {
  await job.cleanup();
  await vault.stop();
}
