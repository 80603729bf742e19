// The Vault client the renewal agent makes from its config: no overall deadline (it runs for
// hours) but a timeout on each request, the config's retries, TLS and proxy, and every lease seen.
import { describe, expect, it } from 'vitest';
import { clientOptions } from '../../../src/agent/config.ts';
import { config, tempRoot } from './fakes.ts';

describe('clientOptions', () => {
  it('has no overall deadline, a 10 s timeout per request, and the TLS, proxy, namespace and retries of the config', async () => {
    const dir = await tempRoot({});
    try {
      const seen: string[] = [];
      const cfg = config(dir, [], { namespace: 'team', tls: { ca: 'CA PEM' }, proxy: 'http://proxy.test:3128', retries: 5 });
      const options = clientOptions(cfg, (lease) => seen.push(lease.leaseId));
      expect(options).toMatchObject({
        url: 'https://vault.test:8200',
        namespace: 'team',
        tls: { ca: 'CA PEM' },
        proxy: 'http://proxy.test:3128',
        deadline: Number.POSITIVE_INFINITY,
        requestTimeoutMs: 10_000,
        retries: 5,
      });
      options.onLease?.({ leaseId: 'database/creds/app/x', path: 'database/creds/app', duration: 10, renewable: true });
      expect(seen).toEqual(['database/creds/app/x']);
      expect('proxy' in clientOptions({ ...cfg, proxy: undefined }, () => {})).toBe(false);
      // extra-headers: the agent's requests carry what main's did.
      expect(clientOptions({ ...cfg, headers: { 'x-gateway-key': 'gw' } }, () => {}).headers).toEqual({ 'x-gateway-key': 'gw' });
    } finally {
      await dir.remove();
    }
  });
});
