// Bundles the compiled CLI (dist/cli/main.js) and its production dependencies into one file,
// dist/stowage.mjs: what `npm start`, the managed plugin and the end-to-end tests run.
//
// Why: @aws-sdk/client-ec2's CommonJS build defines all of EC2's ~700 operations when imported,
// which alone puts a Node process at ~120 MiB resident (issue 10 asks <= 100 MiB for the plugin).
// Its ES module build, bundled and tree-shaken, keeps only the operations the plugin sends, and one
// file means the plugin's rootfs needs no node_modules.
import { build } from 'esbuild';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The SDK's schemas name their XML and query keys through module constants used as computed keys
 * (`{ [_xN]: _BDM }`), and esbuild keeps every statement with a computed key it cannot prove
 * harmless: 1 MB of EC2 schemas, about 15 MiB of heap, whatever the plugin sends. Writing the
 * constant's string in place of the computed key is the same object, and lets tree-shaking drop
 * the schemas of operations never sent.
 */
const inlineSchemaKeys = {
  name: 'inline-schema-keys',
  setup(bundle) {
    bundle.onLoad({ filter: /@aws-sdk\/client-[a-z0-9-]+\/dist-es\/schemas\/schemas_\d+\.js$/ }, async ({ path: file }) => {
      const source = await readFile(file, 'utf8');
      // `cond ? [_a]: b` would read as a computed key; these generated files have no conditionals.
      if (source.includes('?')) throw new Error(`${file}: unexpected '?'; the SDK's schema layout changed, see scripts/bundle.mjs`);
      const strings = new Map([...source.matchAll(/^const (_\w+) = ("[^"\n\\]*");$/gm)].map((m) => [m[1], m[2]]));
      let inlined = 0;
      const contents = source.replace(/\[(_\w+)\]:/g, (key, name) => {
        if (!strings.has(name)) return key;
        inlined++;
        return `${strings.get(name)}:`;
      });
      if (strings.size === 0) throw new Error(`${file}: no key constants found; the SDK's schema layout changed, see scripts/bundle.mjs`);
      return { contents, loader: 'js', ...(inlined === 0 && { warnings: [{ text: `${file}: no computed keys inlined` }] }) };
    });
  },
};

await build({
  entryPoints: [path.join(repo, 'dist/cli/main.js')],
  outfile: path.join(repo, 'dist/stowage.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // The AWS SDK's ES module builds (package.json "module"), which load per operation.
  mainFields: ['module', 'main'],
  plugins: [inlineSchemaKeys],
  // CommonJS dependencies (pino, prom-client) call require() for node's built-ins.
  banner: { js: "import { createRequire as __stowageRequire } from 'node:module'; const require = __stowageRequire(import.meta.url);" },
  sourcemap: 'linked',
  logLevel: 'warning',
});
