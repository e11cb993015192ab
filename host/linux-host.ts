import { chmod, chown, mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { DataSafetyError, HostError } from '../core/errors.js';
import { silentLogger, type Logger } from '../core/log.js';
import type { Filesystem } from '../core/volume-options.js';
import { isErrno } from './errno.js';
import { deviceHeldBy } from './exclusive-open.js';
import { CommandError, DEFAULT_TIMEOUT_MS, runCommand, type ExecRunner } from './exec.js';
import { deviceSize, filesystemSize, growFilesystem } from './filesystem-growth.js';
import type { DeviceProbe, Host, MountEntry, UnmountOptions } from './host.js';
import { describeHolders, findHolders, isUnder } from './holders.js';
import { readMountinfo } from './mountinfo.js';

export interface LinuxHostOptions {
  /** Where the by-id links of NVMe devices live (`/dev/disk/by-id`; localcloud gives each instance its own). */
  deviceDir: string;
  log?: Logger;
  exec?: ExecRunner;
  procDir?: string;
  sysDir?: string;
  /** Reads the first block of a device; tests stand in for devices they do not have. */
  readDeviceHead?: (device: string) => Promise<void>;
}

/** blkid -p exits 2 both for "no signature" and for a device it could not open: reading it first tells them apart. */
async function readHead(device: string): Promise<void> {
  const handle = await open(device, 'r');
  try {
    await handle.read(Buffer.alloc(4096), 0, 4096, 0);
  } finally {
    await handle.close();
  }
}

const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
/** Mount options are allow-listed upstream; this is the last line against argument injection. */
const MOUNT_OPTION = /^[a-z0-9=_.,-]+$/;
const NFS_SOURCE = /^(?:[A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:]+\]):\/[A-Za-z0-9._/-]*$/;
const LABEL = /^[A-Za-z0-9_.-]+$/;
const LABEL_MAX: Record<Filesystem, number> = { ext4: 16, xfs: 12 };
const BUSY = /target is busy|device is busy|EBUSY/i;

const PROBE_TIMEOUT_MS = 30_000;
// Lazy init makes mkfs take seconds; the limit only catches a device that stopped answering.
const MKFS_TIMEOUT_MS = 10 * 60_000;
// A large, damaged ext4 can take long to check; the caller's deadline answers dockerd meanwhile.
const FSCK_TIMEOUT_MS = 60 * 60_000;
const LAZY_UMOUNT_TIMEOUT_MS = 30_000;
// fsfreeze -f waits for writes in flight to drain; a filesystem that takes longer is sick.
const FREEZE_TIMEOUT_MS = 30_000;
const NOT_FROZEN = /invalid argument/i;

export function createLinuxHost(options: LinuxHostOptions): Host {
  const { deviceDir, log = silentLogger, exec = runCommand, procDir = '/proc', sysDir = '/sys', readDeviceHead = readHead } = options;

  const mounts = (): Promise<MountEntry[]> => readMountinfo(join(procDir, 'self', 'mountinfo'));
  const withLog = (operationLog: Logger): Host => createLinuxHost({ ...options, log: operationLog });

  const mountAt = async (target: string): Promise<MountEntry | undefined> => {
    const where = await canonical(target);
    // Mounts stacked on one point are listed in mount order; the last one is what is visible.
    return (await mounts()).filter((m) => m.target === where).at(-1);
  };

  /** True when `isSame(existing)` says the wanted mount is already there; an unrelated mount is an error. */
  const alreadyMounted = async (
    target: string,
    wanted: string,
    isSame: (existing: MountEntry) => Promise<boolean>,
  ): Promise<boolean> => {
    const existing = await mountAt(target);
    if (!existing) return false;
    if (await isSame(existing)) {
      log.debug({ target, source: wanted }, 'already mounted');
      return true;
    }
    throw new HostError(
      `cannot mount ${wanted} on ${target}: ${existing.source} (${existing.fstype}) is already mounted there`,
    );
  };

  const probe = async (device: string): Promise<DeviceProbe> => {
    requireAbsolute(device, 'device');
    // Invariant 9: a probe that cannot read the device is an error, never "blank".
    await readDeviceHead(device).catch((err: NodeJS.ErrnoException) => {
      throw new HostError(`cannot read ${device} (${err.code ?? err.message}): a device that cannot be probed is never treated as blank`, { device }, { cause: err });
    });
    // -p reads the device itself rather than blkid's cache, which may predate a restore or attach.
    const { exitCode, stdout } = await exec('blkid', ['-p', '-o', 'export', device], {
      okCodes: [0, 2, 8],
      timeoutMs: PROBE_TIMEOUT_MS,
    });
    if (exitCode === 2) return { hasSignature: false, detail: 'no signature' };
    // 8 is blkid's "ambiguous probing result": several signatures at once, which is not blank either.
    if (exitCode === 8) return { hasSignature: true, detail: 'several conflicting signatures (blkid: ambiguous)' };
    const fields = parseExport(stdout);
    const detail = [...fields]
      .filter(([key]) => key !== 'DEVNAME')
      .map(([key, value]) => `${key}=${value}`)
      .join(' ');
    const fstype = fields.get('TYPE');
    return { ...(fstype ? { fstype } : {}), hasSignature: true, detail: detail || 'a signature blkid does not name' };
  };

  return {
    withLog,

    async findDevice(volumeId, requestedName) {
      if (!VOLUME_ID.test(volumeId)) {
        throw new HostError(`invalid EBS volume id ${JSON.stringify(volumeId)}`, { volumeId });
      }
      const candidates = [join(deviceDir, `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`)];
      if (requestedName !== undefined) {
        requireAbsolute(requestedName, 'device name');
        candidates.push(requestedName, ...xenAliases(requestedName));
      }
      for (const candidate of candidates) {
        const device = await blockDevice(candidate);
        if (device) return device;
      }
      return undefined;
    },

    async readSerial(device) {
      requireAbsolute(device, 'device');
      const name = basename(await realpath(device).catch((err: unknown) => {
        throw new HostError(`device ${device} does not exist`, {}, { cause: err });
      }));
      try {
        const serial = (await readFile(join(sysDir, 'class', 'block', name, 'device', 'serial'), 'utf8')).trim();
        return serial || undefined;
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
        throw new HostError(`cannot read the serial of ${device}: ${String(err)}`, {}, { cause: err });
      }
    },

    probe,

    async mkfs(device, fs, label) {
      requireAbsolute(device, 'device');
      if (label !== undefined && (!LABEL.test(label) || label.length > LABEL_MAX[fs])) {
        throw new HostError(`invalid ${fs} label ${JSON.stringify(label)}: up to ${LABEL_MAX[fs]} of [A-Za-z0-9_.-]`);
      }
      const found = await probe(device);
      if (found.hasSignature) {
        throw new DataSafetyError(`refusing to format ${device}: it already holds ${found.detail}`, { device });
      }
      const labelArgs = label !== undefined ? ['-L', label] : [];
      const [file, args] =
        fs === 'ext4'
          ? // -F: blkid just found nothing, and mke2fs would otherwise stop to ask about a whole
            // disk with no tty to answer. No discard pass and lazy init keep a 1 TiB format in seconds.
            ['mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1,lazy_journal_init=1', ...labelArgs, device]]
          : // No -f: mkfs.xfs refuses an existing signature by itself, a second guard behind the probe.
            ['mkfs.xfs', ['-q', '-K', ...labelArgs, device]];
      await exec(file, args, { timeoutMs: MKFS_TIMEOUT_MS });
      log.info({ device, fs }, 'formatted blank device');
    },

    async fsck(device, fs) {
      requireAbsolute(device, 'device');
      // xfs replays its log at mount, and xfs_repair -n only reports (slowly): nothing safe to run here.
      if (fs === 'xfs') return;
      let exitCode: number;
      try {
        ({ exitCode } = await exec('e2fsck', ['-p', device], { okCodes: [0, 1, 2], timeoutMs: FSCK_TIMEOUT_MS }));
      } catch (err) {
        if (!(err instanceof CommandError) || err.exitCode === undefined) throw err;
        throw new HostError(
          `the filesystem on ${device} has errors that e2fsck -p will not repair unattended; check it by hand: ${err.message}`,
          { device },
          { cause: err },
        );
      }
      // 2 asks for a reboot when the root filesystem was repaired; an unmounted volume has no such need.
      if (exitCode !== 0) log.warn({ device, exitCode }, 'e2fsck repaired the filesystem');
    },

    async mount(device, target, fs, mountOptions) {
      requireAbsolute(device, 'device');
      requireAbsolute(target, 'mount point');
      const opts = checkOptions(mountOptions);
      // Invariant 11: no set-uid programs or device nodes from a volume unless its options ask.
      if (!opts.includes('suid')) opts.push('nosuid');
      if (!opts.includes('dev')) opts.push('nodev');
      // Volumes restored from one snapshot share a UUID, which xfs otherwise refuses to mount twice.
      if (fs === 'xfs' && !opts.includes('nouuid')) opts.push('nouuid');
      await mkdir(target, { recursive: true, mode: 0o755 });
      const real = await realpath(device).catch(() => device);
      if (await alreadyMounted(target, device, async (m) => m.source === real)) return;
      const args = ['-t', fs, ...(opts.length > 0 ? ['-o', opts.join(',')] : []), device, target];
      await exec('mount', args);
      log.info({ device, target, fs, options: opts }, 'mounted');
    },

    async bindMount(source, target, flags = ['nosuid', 'nodev']) {
      requireAbsolute(source, 'bind source');
      requireAbsolute(target, 'mount point');
      const from = await stat(source).catch((err: unknown) => {
        throw new HostError(`bind source ${source} does not exist`, {}, { cause: err });
      });
      if (!from.isDirectory()) throw new HostError(`bind source ${source} is not a directory`);
      await mkdir(target, { recursive: true, mode: 0o755 });
      const sameAsSource = async (): Promise<boolean> => {
        const to = await stat(target);
        return to.dev === from.dev && to.ino === from.ino;
      };
      if (await alreadyMounted(target, source, sameAsSource)) return;
      await exec('mount', ['--bind', source, target]);
      // A bind mount takes per-mount flags only through a remount of itself.
      if (flags.length > 0) {
        await exec('mount', ['-o', `remount,bind,${checkOptions(flags).join(',')}`, target]).catch(async (err: unknown) => {
          await exec('umount', [target]).catch(() => undefined);
          throw err;
        });
      }
      log.info({ source, target, flags }, 'bind-mounted');
    },

    async mountNfs(source, target, mountOptions, type = 'nfs4') {
      if (!NFS_SOURCE.test(source)) {
        throw new HostError(`invalid NFS source ${JSON.stringify(source)}: expected host:/export`);
      }
      requireAbsolute(target, 'mount point');
      const opts = checkOptions(mountOptions);
      await mkdir(target, { recursive: true, mode: 0o755 });
      if (await alreadyMounted(target, source, async (m) => m.source === source)) return;
      const args = ['-t', type, ...(opts.length > 0 ? ['-o', opts.join(',')] : []), source, target];
      await exec('mount', args);
      log.info({ source, target, type, options: opts }, 'mounted NFS export');
    },

    async unmount(target, unmountOptions: UnmountOptions = {}) {
      requireAbsolute(target, 'mount point');
      const entry = await mountAt(target);
      if (!entry) {
        log.debug({ target }, 'not mounted; nothing to unmount');
        return;
      }
      const where = entry.target;
      const timeoutMs = unmountOptions.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      const deadline = Date.now() + timeoutMs;
      const left = (): number => Math.max(1, deadline - Date.now());
      try {
        // sync -f flushes only this filesystem: a plain sync would wait on every hung NFS mount.
        await exec('sync', ['-f', where], { timeoutMs: left() });
        await exec('umount', [where], { timeoutMs: left() });
      } catch (err) {
        if (!(err instanceof CommandError)) throw err;
        if (err.timedOut && unmountOptions.lazyAfterTimeout) {
          log.warn({ target: where, timeoutMs }, 'unmount hung; detaching lazily with umount -l');
          await exec('umount', ['-l', where], { timeoutMs: LAZY_UMOUNT_TIMEOUT_MS });
          return;
        }
        if (BUSY.test(err.stderr)) throw await busyError(where, err);
        throw err;
      }
      log.info({ target: where }, 'unmounted');
    },

    mounts,
    mountAt,

    deviceHeldBy(device) {
      requireAbsolute(device, 'device');
      return deviceHeldBy(device, { procDir, sysDir });
    },

    async sync() {
      await exec('sync', []);
    },

    async freeze(mountpoint) {
      requireAbsolute(mountpoint, 'mount point');
      await exec('fsfreeze', ['-f', mountpoint], { timeoutMs: FREEZE_TIMEOUT_MS });
      log.info({ target: mountpoint }, 'filesystem frozen');
    },

    async thaw(mountpoint) {
      requireAbsolute(mountpoint, 'mount point');
      try {
        await exec('fsfreeze', ['-u', mountpoint], { timeoutMs: FREEZE_TIMEOUT_MS });
        log.info({ target: mountpoint }, 'filesystem thawed');
      } catch (err) {
        // The kernel answers EINVAL for a filesystem that is not frozen: already thawed is thawed.
        if (err instanceof CommandError && NOT_FROZEN.test(err.stderr)) return;
        throw err;
      }
    },

    async setRootOwner(mountpoint, owner) {
      requireAbsolute(mountpoint, 'mount point');
      await chown(mountpoint, owner.uid, owner.gid);
      await chmod(mountpoint, Number.parseInt(owner.mode, 8));
      log.info({ target: mountpoint, ...owner }, 'set the owner and mode of the filesystem root');
    },

    deviceSize(device) {
      requireAbsolute(device, 'device');
      return deviceSize(device, sysDir);
    },

    filesystemSize(device, fs, mountpoint) {
      requireAbsolute(device, 'device');
      if (mountpoint !== undefined) requireAbsolute(mountpoint, 'mount point');
      return filesystemSize(exec, device, fs, mountpoint);
    },

    async growFilesystem(device, fs, mountpoint) {
      requireAbsolute(device, 'device');
      if (mountpoint !== undefined) requireAbsolute(mountpoint, 'mount point');
      await growFilesystem(exec, device, fs, mountpoint);
      log.info({ device, target: mountpoint, fs }, mountpoint !== undefined ? 'grew the filesystem online to fill its device' : 'grew the filesystem to fill its device');
    },
  };

  async function busyError(target: string, cause: CommandError): Promise<HostError> {
    const holders = await findHolders(target, { procDir, exec });
    const inner = (await mounts()).filter((m) => m.target !== target && isUnder(m.target, target));
    const reasons = [
      ...(holders.length > 0 ? [`held by ${describeHolders(holders)}`] : []),
      ...(inner.length > 0 ? [`has mounts inside: ${inner.map((m) => m.target).join(', ')}`] : []),
    ];
    const why =
      reasons.length > 0
        ? reasons.join('; ')
        : 'no process visible from here holds it (another mount namespace, or the kernel: swap, loop, export)';
    return new HostError(`cannot unmount ${target}: it is busy, ${why}`, {}, { cause });
  }
}

/** `/dev/sdf` and `/dev/xvdf` name the same attachment depending on the kernel's Xen driver. */
function xenAliases(name: string): string[] {
  const dir = dirname(name);
  const base = basename(name);
  const sd = /^sd([a-z]+\d*)$/.exec(base);
  if (sd) return [join(dir, `xvd${sd[1]}`)];
  const xvd = /^xvd([a-z]+\d*)$/.exec(base);
  if (xvd) return [join(dir, `sd${xvd[1]}`)];
  return [];
}

/** The real path of a block device, or undefined when `path` does not lead to one. */
async function blockDevice(path: string): Promise<string | undefined> {
  try {
    const real = await realpath(path);
    return (await stat(real)).isBlockDevice() ? real : undefined;
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
    throw new HostError(`cannot inspect ${path}: ${String(err)}`, {}, { cause: err });
  }
}

/** mountinfo shows canonical paths; a target reached through a symlink must compare equal. */
async function canonical(path: string): Promise<string> {
  return realpath(path).catch(() => resolve(path));
}

function checkOptions(options: readonly string[]): string[] {
  for (const option of options) {
    if (!MOUNT_OPTION.test(option)) {
      throw new HostError(`refusing mount option ${JSON.stringify(option)}: only [a-z0-9=_.,-] is allowed`);
    }
  }
  return [...options];
}

/** An absolute path cannot be mistaken for a command-line option. */
function requireAbsolute(path: string, what: string): void {
  if (!isAbsolute(path) || path.includes('\0')) throw new HostError(`${what} must be an absolute path, got ${JSON.stringify(path)}`);
}

function parseExport(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) fields.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return fields;
}
