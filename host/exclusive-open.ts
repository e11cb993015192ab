import { constants } from 'node:fs';
import { open, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { HostError } from '../core/errors.js';
import { isErrno } from './errno.js';
import { commandOf } from './holders.js';
import { readMountinfo } from './mountinfo.js';

export interface ExclusiveOpenOptions {
  procDir: string;
  sysDir: string;
}

/**
 * Undefined when an exclusive open of `device` succeeds. On Linux, O_EXCL without O_CREAT on a block
 * device fails with EBUSY while any mount namespace has it mounted, or the kernel lets something
 * else claim it (device mapper, md, swap, another exclusive opener): the one check that sees past
 * our own mountinfo. Kubernetes' mount-utils asks the same before it lets a device go
 * (`ExclusiveOpenFailsOnDevice`, behind `HostUtil.DeviceOpened`). Otherwise, who holds it.
 */
export async function deviceHeldBy(device: string, options: ExclusiveOpenOptions): Promise<string | undefined> {
  const info = await stat(device).catch((err: unknown) => {
    throw new HostError(`cannot inspect ${device}: ${String(err)}`, { device }, { cause: err });
  });
  // O_EXCL means nothing on a regular file: that would always look free.
  if (!info.isBlockDevice()) {
    throw new HostError(`${device} is not a block device; cannot tell whether anything holds it`, { device });
  }
  try {
    const handle = await open(device, constants.O_RDONLY | constants.O_EXCL);
    await handle.close();
    return undefined;
  } catch (err) {
    if (!isErrno(err, 'EBUSY')) {
      throw new HostError(`cannot open ${device} exclusively to see whether anything holds it: ${String(err)}`, { device }, { cause: err });
    }
  }
  const name = basename(await realpath(device));
  const found = [...(await kernelHolders(name, options.sysDir)), ...(await mountsElsewhere(name, options))];
  return found.length > 0
    ? found.join('; ')
    : 'held by something not visible from here (a mount namespace none of our processes can see, swap, or another exclusive opener)';
}

/** What the kernel stacked on the device (`dm-0`, `md127`), from sysfs. */
async function kernelHolders(name: string, sysDir: string): Promise<string[]> {
  const holders = await readdir(join(sysDir, 'class', 'block', name, 'holders')).catch(() => [] as string[]);
  return holders.map((holder) => `claimed by ${holder}`);
}

/**
 * The device's mounts in every mount namespace a process visible to us lives in, found by device
 * number: a mount namespace has no name, so each is named after its first process.
 */
async function mountsElsewhere(name: string, { procDir, sysDir }: ExclusiveOpenOptions): Promise<string[]> {
  const devno = (await readFile(join(sysDir, 'class', 'block', name, 'dev'), 'utf8').catch(() => '')).trim();
  if (devno === '') return [];
  const pids = (await readdir(procDir))
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .sort((a, b) => a - b);
  const seen = new Set<string>();
  const found: string[] = [];
  for (const pid of pids) {
    // Processes come and go during the scan, and the refusal stands on the EBUSY alone: what
    // cannot be read is skipped.
    const namespace = await readlink(join(procDir, String(pid), 'ns', 'mnt')).catch(() => undefined);
    if (namespace === undefined || seen.has(namespace)) continue;
    seen.add(namespace);
    const mounts = await readMountinfo(join(procDir, String(pid), 'mountinfo')).catch(() => []);
    const targets = mounts.filter((m) => m.devno === devno).map((m) => m.target);
    if (targets.length > 0) {
      found.push(`mounted at ${targets.join(', ')} in the mount namespace of pid ${pid} (${await commandOf(procDir, pid)})`);
    }
  }
  return found;
}
