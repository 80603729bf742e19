// Runs before vitest (`npm test`): makes sure the Debian packages the Docker test services use are
// installed. As root it installs what is missing (apt-get); otherwise it prints what to install and
// exits 1. Only looks at files when everything is there, so it takes a few milliseconds.
import { ensurePackages } from '../test/services/install.ts';

try {
  await ensurePackages();
} catch (e) {
  console.error(`test-preflight: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
