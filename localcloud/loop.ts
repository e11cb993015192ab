import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative, sep } from 'node:path';
import { promisify } from 'node:util';

/** The host side of the emulation: loop devices, sparse copies and the mounts made on them. */

const exec = promisify(execFile);

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    return (await exec(cmd, args)).stdout.trim();
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

export async function attachLoop(image: string): Promise<string> {
  return run('losetup', ['--find', '--show', image]);
}

/** With the device still mounted the kernel keeps it until the last unmount (autoclear). */
export async function detachLoop(device: string): Promise<void> {
  await run('losetup', ['-d', device]);
}

/** Tells the loop driver its backing file grew. */
export async function refreshLoopSize(device: string): Promise<void> {
  await run('losetup', ['-c', device]);
}

/** The backing file of a loop device, or undefined when the device is free. */
export async function loopBackingFile(device: string): Promise<string | undefined> {
  try {
    return (await readFile(`/sys/block/${basename(device)}/loop/backing_file`, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** Every loop device whose backing file lies in `folder`. */
export async function loopsBackedIn(folder: string): Promise<{ device: string; file: string }[]> {
  const found: { device: string; file: string }[] = [];
  for (const name of await readdir('/sys/block')) {
    if (!name.startsWith('loop')) continue;
    const file = await loopBackingFile(name);
    if (file !== undefined && file.startsWith(folder + sep)) found.push({ device: `/dev/${name}`, file });
  }
  return found;
}

/**
 * An exclusive open of a block device fails with EBUSY while it is mounted or held, in any mount
 * namespace: the same test the kernel applies before it lets an instance release a volume.
 */
export async function isBusy(device: string): Promise<boolean> {
  try {
    await (await open(device, constants.O_RDONLY | constants.O_EXCL)).close();
    return false;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EBUSY') return true;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function sparseCopy(from: string, to: string): Promise<void> {
  await run('cp', ['--sparse=always', from, to]);
}

export async function allocatedBytes(file: string): Promise<number> {
  return (await stat(file)).blocks * 512;
}

interface MountEntry {
  devno: string;
  root: string;
  mountPoint: string;
}

async function mounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      return { devno: f[2]!, root: unescape(f[3]!), mountPoint: unescape(f[4]!) };
    });
}

async function devno(path: string, block: boolean): Promise<string> {
  const s = await stat(path);
  const dev = block ? s.rdev : s.dev;
  // Linux encodes major/minor as in the kernel's new_encode_dev
  return `${(dev >> 8) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}`;
}

/** Mount points of these block devices, and bind mounts of anything under `folder`. */
export async function mountsOf(devices: string[], folder: string): Promise<string[]> {
  const table = await mounts();
  const devnos = new Set(await Promise.all(devices.map((d) => devno(d, true).catch(() => ''))));
  const folderDev = await devno(folder, false);
  // a bind mount shows the source as a path relative to the root of its file system
  const host = table
    .filter((m) => m.devno === folderDev && (folder === m.mountPoint || folder.startsWith(m.mountPoint.replace(/\/$/, '') + '/')))
    .sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0];
  const folderRoot = host ? join(host.root, relative(host.mountPoint, folder)) : undefined;
  return table
    .filter(
      (m) =>
        devnos.has(m.devno) ||
        (folderRoot !== undefined && m.devno === folderDev && m !== host && (m.root === folderRoot || m.root.startsWith(folderRoot + '/'))),
    )
    .map((m) => m.mountPoint)
    .reverse(); // innermost first
}

export async function unmount(mountPoint: string): Promise<void> {
  await run('umount', [mountPoint]);
}
