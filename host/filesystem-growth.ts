import { readFile, realpath } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { HostError } from '../core/errors.js';
import type { Filesystem } from '../core/volume-options.js';
import type { ExecRunner } from './exec.js';

/** A volume's size as the kernel and its filesystem see it, and growing the one to the other after an EBS modification. */

/** resize2fs moves metadata while the filesystem stays in use; on a busy large volume that takes a while. */
const GROW_TIMEOUT_MS = 10 * 60_000;
const READ_TIMEOUT_MS = 30_000;

/** Bytes of the block device now: the kernel's sector count, which grows when EBS (or `losetup -c`) says so. */
export async function deviceSize(device: string, sysDir: string): Promise<number> {
  const name = basename(await realpath(device).catch((err: unknown) => {
    throw new HostError(`device ${device} does not exist`, { device }, { cause: err });
  }));
  const text = await readFile(join(sysDir, 'class', 'block', name, 'size'), 'utf8').catch((err: unknown) => {
    throw new HostError(`cannot read the size of ${device}: ${String(err)}`, { device }, { cause: err });
  });
  const sectors = Number(text.trim());
  if (!Number.isSafeInteger(sectors)) throw new HostError(`the kernel gave ${JSON.stringify(text.trim())} as the size of ${device}`, { device });
  return sectors * 512;
}

const EXT4_BLOCKS = /^Block count:\s+(\d+)$/m;
const EXT4_BLOCK_SIZE = /^Block size:\s+(\d+)$/m;
const XFS_DATA = /^data\s+=\s+bsize=(\d+)\s+blocks=(\d+)/m;
const XFS_SB_BLOCKSIZE = /^blocksize = (\d+)$/m;
const XFS_SB_DBLOCKS = /^dblocks = (\d+)$/m;

/**
 * Bytes the filesystem spans by its own count of blocks (df shows less: it leaves out metadata),
 * so that it compares with the device's size. xfs is asked through its mount point when mounted
 * (the kernel's figure), else its superblock is read.
 */
export async function filesystemSize(exec: ExecRunner, device: string, fs: Filesystem, mountpoint: string | undefined): Promise<number> {
  const product = (text: string, command: string, count: RegExp, size: RegExp): number => {
    const blocks = count.exec(text)?.[1];
    const bytes = size.exec(text)?.[1];
    if (blocks === undefined || bytes === undefined) throw new HostError(`${command} shows no block count and block size`, { device });
    return Number(blocks) * Number(bytes);
  };
  if (fs === 'ext4') {
    const { stdout } = await exec('dumpe2fs', ['-h', device], { timeoutMs: READ_TIMEOUT_MS });
    return product(stdout, `dumpe2fs -h ${device}`, EXT4_BLOCKS, EXT4_BLOCK_SIZE);
  }
  if (mountpoint !== undefined) {
    const { stdout } = await exec('xfs_info', [mountpoint], { timeoutMs: READ_TIMEOUT_MS });
    const m = XFS_DATA.exec(stdout);
    if (!m) throw new HostError(`xfs_info ${mountpoint} shows no data section`, { device });
    return Number(m[1]) * Number(m[2]);
  }
  const { stdout } = await exec('xfs_db', ['-r', '-c', 'sb 0', '-c', 'p blocksize dblocks', device], { timeoutMs: READ_TIMEOUT_MS });
  return product(stdout, `xfs_db -r ${device}`, XFS_SB_DBLOCKS, XFS_SB_BLOCKSIZE);
}

/**
 * Grows the filesystem to fill its device: online when `mountpoint` is given (files stay open and
 * writes go on), else, for ext4 only, offline after a full check, which resize2fs wants first.
 */
export async function growFilesystem(exec: ExecRunner, device: string, fs: Filesystem, mountpoint: string | undefined): Promise<void> {
  if (fs === 'ext4') {
    if (mountpoint === undefined) await exec('e2fsck', ['-f', '-p', device], { okCodes: [0, 1], timeoutMs: GROW_TIMEOUT_MS });
    await exec('resize2fs', [device], { timeoutMs: GROW_TIMEOUT_MS });
    return;
  }
  // xfs grows only while mounted, and is named by its mount point.
  if (mountpoint === undefined) throw new HostError(`xfs on ${device} grows only while mounted`, { device });
  await exec('xfs_growfs', ['-d', mountpoint], { timeoutMs: GROW_TIMEOUT_MS });
}
