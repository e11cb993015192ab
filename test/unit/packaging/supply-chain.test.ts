/**
 * The supply chain of the managed plugin: the Dockerfile's base image is a supported Node LTS pinned
 * by digest, and every way of making the plugin (Dockerfile, assemble-rootfs.sh, build-plugin.sh)
 * ships the same CycloneDX SBOM of the npm packages the bundle carries. Whether the digest is still
 * the registry's current one needs a registry, which these tests do not reach.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(REPO, file), 'utf8');
const SBOM_COMMAND = 'npm sbom --omit dev --sbom-format cyclonedx --sbom-type application';

test('every stage of the Dockerfile is built FROM one Node 22 or 24 image pinned by its digest', () => {
  const dockerfile = read('Dockerfile');
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
  expect(image).toMatch(/^node:(22|24)-bookworm-slim@sha256:[0-9a-f]{64}$/);
  const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
  expect(froms.length).toBe(2);
  expect(new Set(froms)).toEqual(new Set(['${NODE_IMAGE}']));
});

test('the image and the assembled rootfs make the SBOM the same way and put it next to the bundle', () => {
  const dockerfile = read('Dockerfile');
  expect(dockerfile).toContain(`RUN ${SBOM_COMMAND} > dist/sbom.cdx.json`);
  expect(dockerfile).toMatch(/^COPY --from=build \/src\/dist\/stowage\.mjs \/src\/dist\/sbom\.cdx\.json dist\/$/m);
  expect(read('scripts/assemble-rootfs.sh')).toContain(`${SBOM_COMMAND} --package-lock-only) >"$R/opt/stowage/dist/sbom.cdx.json"`);
});

test('the SBOM is CycloneDX and lists every production dependency, and no development one', () => {
  const sbom = JSON.parse(execFileSync('sh', ['-c', `${SBOM_COMMAND} --package-lock-only`], { cwd: REPO, encoding: 'utf8' })) as {
    bomFormat: string;
    components: { name: string; version: string }[];
  };
  const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  expect(sbom.bomFormat).toBe('CycloneDX');
  const listed = new Map(sbom.components.map((c) => [c.name, c.version]));
  for (const [name, version] of Object.entries(pkg.dependencies)) expect([name, listed.get(name)]).toEqual([name, version]);
  for (const name of Object.keys(pkg.devDependencies)) expect([name, listed.has(name)]).toEqual([name, false]);
});

test('build-plugin.sh refuses a rootfs without an SBOM before it asks docker for anything', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stowage-rootfs-'));
  try {
    mkdirSync(path.join(dir, 'usr/local/bin'), { recursive: true });
    writeFileSync(path.join(dir, 'usr/local/bin/node'), '');
    chmodSync(path.join(dir, 'usr/local/bin/node'), 0o755);
    // A docker that fails loudly: reaching it would mean the check came too late.
    const run = spawnSync(path.join(REPO, 'scripts/build-plugin.sh'), ['--rootfs', dir, '--sbom', path.join(dir, 'out.cdx.json')], {
      encoding: 'utf8',
      env: { ...process.env, DOCKER: '/bin/false' },
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('the rootfs has no SBOM at /opt/stowage/dist/sbom.cdx.json');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
