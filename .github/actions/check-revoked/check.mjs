// CI fixture (see action.yml): main only marks itself; post asks the server what the Pipeline
// Secrets step left alive. No dependencies: it runs from the checkout as it is.
import { appendFileSync } from 'node:fs';

const input = (name) => process.env[`INPUT_${name.toUpperCase().replace(/ /g, '_')}`] ?? '';
const url = input('url').replace(/\/+$/, '');
const root = input('root-token');
const prefix = input('lease-prefix').replace(/^\/+|\/+$/g, '');
const isPost = process.env.STATE_isPost === 'true';

async function api(method, path, body) {
  const res = await fetch(`${url}/v1/${path}`, {
    method,
    headers: { 'X-Vault-Token': root, 'X-Vault-Request': 'true', 'Content-Type': 'application/json' },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

if (!isPost) {
  appendFileSync(process.env.GITHUB_STATE, 'isPost=true\n');
  console.log('check-revoked: will check the server after the Pipeline Secrets post step');
} else {
  const problems = [];
  const accessors = await api('LIST', 'auth/token/accessors');
  for (const accessor of accessors.body?.data?.keys ?? []) {
    const info = await api('POST', 'auth/token/lookup-accessor', { accessor });
    const data = info.body?.data;
    if (info.status === 200 && !(data?.policies ?? []).includes('root')) {
      problems.push(`a token is still alive (display name ${data?.display_name}, path ${data?.path})`);
    }
  }
  const leases = await api('LIST', `sys/leases/lookup/${prefix}/`);
  const left = leases.status === 200 ? (leases.body?.data?.keys ?? []) : [];
  if (left.length > 0) problems.push(`${left.length} lease(s) under ${prefix}/ are still alive`);
  if (leases.status !== 200 && leases.status !== 404) problems.push(`listing leases under ${prefix}/ answered ${leases.status}`);
  if (problems.length > 0) {
    for (const p of problems) console.log(`::error::check-revoked: ${p}`);
    process.exit(1);
  }
  console.log(`check-revoked: no token of a login and no lease under ${prefix}/ left alive`);
}
