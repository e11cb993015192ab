import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Dockerd } from './dockerd.js';
import { run } from './run.js';

/** From Debian's busybox-static: one static binary, so the image needs no libraries. */
const BUSYBOX = '/bin/busybox';
const TAR = '/usr/bin/tar';
const TARBALL_PREFIX = 'stowage-busybox-rootfs-';

/**
 * Makes `tag` a busybox image in the daemon (no registry is needed: the rootfs is built from the
 * host's static busybox and imported). Returns the tag.
 */
export async function importBusybox(d: Dockerd, tag = 'busybox:stowage'): Promise<string> {
  const have = await d.docker(['image', 'inspect', '--format', '{{.Id}}', tag], { allowFailure: true });
  if (have.code === 0) return tag;
  const tarball = await busyboxTarball();
  // The client reads the file itself: the same as `docker import - < rootfs.tar`, without a shell.
  await d.docker(['import', '--change', 'ENV PATH=/bin', tarball, tag], { timeoutMs: 120_000 });
  return tag;
}

/**
 * One tarball per jest process, kept in os.tmpdir(): test files share it instead of each building
 * its own. Built under a temporary name and renamed, so a reader never sees half a file.
 */
async function busyboxTarball(): Promise<string> {
  const tarball = path.join(os.tmpdir(), `${TARBALL_PREFIX}${process.pid}.tar`);
  if (await stat(tarball).then(() => true, () => false)) return tarball;
  await removeAbandonedTarballs();
  try {
    await stat(BUSYBOX);
  } catch {
    throw new Error(`${BUSYBOX} is missing: the real-dockerd tests need Debian's busybox-static (apt-get install busybox-static)`);
  }
  const work = await mkdtemp(path.join(os.tmpdir(), 'stowage-busybox-'));
  try {
    const bin = path.join(work, 'rootfs', 'bin');
    await mkdir(bin, { recursive: true });
    await copyFile(BUSYBOX, path.join(bin, 'busybox'));
    const applets = (await run(BUSYBOX, ['--list'])).stdout.split('\n').filter((a) => a !== '' && a !== 'busybox');
    for (const applet of applets) await symlink('busybox', path.join(bin, applet));
    // docker creates /etc/hosts and friends itself; /tmp is what scripts in the tests expect.
    await mkdir(path.join(work, 'rootfs', 'tmp'), { mode: 0o1777 });
    const partial = path.join(work, 'rootfs.tar');
    await run(TAR, ['-C', path.join(work, 'rootfs'), '--numeric-owner', '-cf', partial, '.']);
    await rename(partial, tarball);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return tarball;
}

/** Jest never runs exit hooks in test files, so the tarballs of finished runs go here. */
async function removeAbandonedTarballs(): Promise<void> {
  for (const entry of await readdir(os.tmpdir())) {
    const pid = new RegExp(`^${TARBALL_PREFIX}([0-9]+)\\.tar$`).exec(entry)?.[1];
    if (pid === undefined || (await stat(`/proc/${pid}`).then(() => true, () => false))) continue;
    await rm(path.join(os.tmpdir(), entry), { force: true });
  }
}
