// Bundles the action's entry points into dist/ with esbuild (see README "Development" for why
// esbuild rather than ncc: the bundle's cold start is what every job pays).
import { build, type Plugin } from 'esbuild';
import { rm } from 'node:fs/promises';

// node-vault requires axios at load time, but the action always hands node-vault its own transport
// (src/vault/transport.ts), so axios is dead weight: replace it with a stub that fails loudly if
// anything ever reaches it.
const stubAxios: Plugin = {
  name: 'stub-axios',
  setup(b) {
    b.onResolve({ filter: /^axios$/ }, () => ({ path: 'axios', namespace: 'stub-axios' }));
    b.onLoad({ filter: /.*/, namespace: 'stub-axios' }, () => ({
      contents: `const fail = () => { throw new Error('axios is not bundled: node-vault must use the injected transport'); };
module.exports = Object.assign(fail, { create: fail, default: fail });`,
      loader: 'js',
    }));
  },
};

await rm('dist', { recursive: true, force: true });
await build({
  entryPoints: { main: 'src/main.ts', post: 'src/post.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  legalComments: 'linked',
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (node-vault) call require(); give the ESM bundle a real one.
  banner: { js: "import { createRequire as __psCreateRequire } from 'node:module'; const require = __psCreateRequire(import.meta.url);" },
  plugins: [stubAxios],
  logLevel: 'warning',
});
