// Bundles the action's entry points into dist/ with esbuild (see README "Development" for why
// esbuild rather than ncc: the bundle's cold start is what every job pays).
import { build, type BuildOptions, type Plugin } from 'esbuild';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';

// `--metafile`: also write esbuild's metafile (what each bundle holds, what it imports) to
// bench/.out/metafile.json, and print each entry's size, largest inputs and what it requires.
const metafile = process.argv.includes('--metafile');

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

// node-vault requires modules at load that the action never uses, or uses for one thing only,
// together about 12 ms of every run with Vault and about 3 ms of CPU on 100 reads (measured on Node 24):
// - `debug`, its default logger: client.ts always replaces it with its own (`config.debug`), so a no-op.
// - node:https (with node:tls), for the https.Agent of its built-in transport, which the injected
//   one replaces: required on first use (exchange.ts loads it for an https:// Vault).
// - tv4, a JSON-schema validator that checks every request is an object with a string path and
//   method: that one shape is checked directly; any other schema, and any request that does not
//   pass, goes to tv4 itself (loaded then), so what passes and what fails is tv4's answer as before.
const nodeVaultUnused: Plugin = {
  name: 'node-vault-unused',
  setup(b) {
    const fromNodeVault = /[\\/]node_modules[\\/]node-vault[\\/]/;
    b.onResolve({ filter: /^(debug|https|tv4)$/ }, (args) =>
      fromNodeVault.test(args.importer)
        ? { path: args.path, namespace: 'node-vault-unused', pluginData: { resolveDir: path.dirname(args.importer) } }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'node-vault-unused' }, (args) => ({
      contents: unusedStubs[args.path] ?? '',
      loader: 'js',
      resolveDir: (args.pluginData as { resolveDir: string }).resolveDir,
    }));
  },
};
const unusedStubs: Record<string, string> = {
  debug: 'module.exports = () => () => {};',
  https: "let https; module.exports = new Proxy({}, { get: (_, key) => (https ??= require('node:https'))[key] });",
  tv4: `let tv4;
const plain = (s) => s !== null && typeof s === 'object' && Object.keys(s).every((k) => k === 'type' || k === 'properties' || k === 'required');
const valid = (data, schema) => {
  if (!plain(schema) || schema.type !== 'object' || data === null || typeof data !== 'object' || Array.isArray(data)) return false;
  for (const key of schema.required ?? []) if (data[key] === undefined) return false;
  for (const [key, property] of Object.entries(schema.properties ?? {})) {
    if (!plain(property) || Object.keys(property).length !== 1 || property.type !== 'string') return false;
    if (data[key] !== undefined && typeof data[key] !== 'string') return false;
  }
  return true;
};
module.exports = {
  error: null,
  validate(data, schema) {
    if (valid(data, schema)) return (this.error = null), true;
    tv4 ??= require('tv4');
    const result = tv4.validate(data, schema);
    this.error = tv4.error;
    return result;
  },
};`,
};

// @actions/core imports its OIDC client (and through it @actions/http-client, undici and tunnel)
// at the top of its index, although only getIDToken uses it. These modules have no side effects
// worth keeping on import, so let esbuild drop them from the bundle paths that never call it.
const sideEffectFree: Plugin = {
  name: 'side-effect-free',
  setup(b) {
    const filter =
      /[\\/]node_modules[\\/](@actions[\\/]http-client|undici|tunnel|@actions[\\/]exec|@actions[\\/]io)[\\/]|[\\/]@actions[\\/]core[\\/]lib[\\/](oidc-utils|platform)\.js$/;
    b.onLoad({ filter }, () => undefined);
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'side-effect-free') return undefined;
      const result = await b.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: 'side-effect-free',
      });
      if (result.errors.length > 0 || !filter.test(result.path)) return undefined;
      return { ...result, sideEffects: false };
    });
  },
};

// What most runs never need is bundled apart and loaded on demand: node-vault only when `secrets`
// has entries, the OIDC client only for method jwt. A dynamic import of those modules in src/
// becomes an import of the sibling bundle in dist/. The lazy bundles hold third-party code only, so
// no class of ours exists twice (instanceof stays true across bundles).
const lazy: Record<string, string> = {
  './oidc-token.ts': './oidc-token.js',
  './node-vault.ts': './node-vault.js',
  './proxy-agent.ts': './proxy-agent.js',
};
const lazyEntries: Plugin = {
  name: 'lazy-entries',
  setup(b) {
    b.onResolve({ filter: /^\.\/(oidc-token|node-vault|proxy-agent)\.ts$/ }, (args) =>
      args.kind === 'dynamic-import' ? { path: lazy[args.path] ?? args.path, external: true } : undefined,
    );
  },
};

const common: BuildOptions = {
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  minify: true,
  legalComments: 'linked',
  // CommonJS dependencies (node-vault) call require(); give the ESM bundle a real one.
  banner: { js: "import { createRequire as __psCreateRequire } from 'node:module'; const require = __psCreateRequire(import.meta.url);" },
  plugins: [stubAxios, nodeVaultUnused, sideEffectFree, lazyEntries],
  logLevel: 'warning',
};

await rm('dist', { recursive: true, force: true });
// The entry bundles hold our code and ESM dependencies only, which never call require(): they get
// no banner, so a step does not pay for an import of node:module and a createRequire it never
// uses (about 1 ms). The lazy bundles wrap CommonJS packages and get the require they call.
const [entries, lazies] = await Promise.all([
  build({
    ...common,
    banner: {},
    metafile: true,
    entryPoints: {
      main: 'src/main/entry.ts',
      post: 'src/post/entry.ts',
      verify: 'src/verify/entry.ts',
      agent: 'src/agent/entry.ts',
      scan: 'src/leak-scan/entry.ts',
    },
    outdir: 'dist',
  }),
  build({
    ...common,
    metafile: true,
    entryPoints: {
      'oidc-token': 'src/core/oidc-token.ts',
      'node-vault': 'src/vault/node-vault.ts',
      'proxy-agent': 'src/vault/proxy-agent.ts',
    },
    outdir: 'dist',
  }),
]);
// Should an entry bundle ever come to call require(), esbuild's stand-in would throw on first use:
// fail the build instead.
for (const out of Object.keys(entries.metafile.outputs).filter((o) => o.endsWith('.js'))) {
  if ((await readFile(out, 'utf8')).includes('Dynamic require of')) {
    throw new Error(`${out} calls require(): bundle what needs it as a lazy entry (with the banner), or import it`);
  }
}
const result = { metafile: { inputs: {}, outputs: { ...entries.metafile.outputs, ...lazies.metafile.outputs } } };

if (metafile) {
  await mkdir('bench/.out', { recursive: true });
  await writeFile('bench/.out/metafile.json', JSON.stringify(result.metafile, null, 1));
  for (const [out, o] of Object.entries(result.metafile.outputs)) {
    if (!out.endsWith('.js') || o.entryPoint === undefined) continue;
    const byPackage = new Map<string, number>();
    for (const [input, { bytesInOutput }] of Object.entries(o.inputs)) {
      const key = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.replace(/\/[^/]+$/, '');
      byPackage.set(key, (byPackage.get(key) ?? 0) + bytesInOutput);
    }
    const top = [...byPackage].sort((a, b) => b[1] - a[1]).slice(0, 8);
    const atLoad = [
      ...new Set(o.imports.filter((i) => i.external && i.kind !== 'dynamic-import').map((i) => i.path.replace(/^node:/, ''))),
    ];
    const onDemand = o.imports.filter((i) => i.kind === 'dynamic-import').map((i) => i.path);
    console.log(`${out} ${o.bytes} bytes: ${top.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    // A require() inside a function (the node-vault stubs') is listed too: esbuild cannot tell when it runs.
    console.log(`  built-ins it requires: ${atLoad.join(' ') || '-'}; bundles it imports on demand: ${onDemand.join(' ') || '-'}`);
  }
}
