import type { Host } from '../../host/host.js';
import { DataSafetyError, HostError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { FILESYSTEMS, type Filesystem } from '../../core/volume-options.js';
import { delay } from '../../core/delay.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import { roomToGrow, toMiB } from './fs-growth.js';

function isFilesystem(fstype: string | undefined): fstype is Filesystem {
  return (FILESYSTEMS as readonly string[]).includes(fstype ?? '');
}

/** Looking for a device is a stat of one link: cheap enough to do often. */
const DEVICE_POLL_MS = 100;

/**
 * The kernel shows `mountpoint` mounted from the volume's device (by volume id, else the requested
 * name): the answer for a Mount, a held reference or a freeze, whatever a lagging Describe shows.
 */
export async function mountedFromVolume(host: Host, volumeId: string, mountpoint: string, requested: string | undefined): Promise<boolean> {
  const mounted = await host.mountAt(mountpoint);
  return mounted !== undefined && mounted.source === (await host.findDevice(volumeId, requested));
}

/** Whether the volume's own device (found by volume id, never by a reusable name) shows up in time. */
export async function deviceAppears(host: Host, volumeId: string, giveUpAt: number, signal: AbortSignal): Promise<boolean> {
  while (!signal.aborted && Date.now() < giveUpAt) {
    if (await host.findDevice(volumeId)) return true;
    await delay(DEVICE_POLL_MS);
  }
  return false;
}

/** The node's device for the volume: by volume id (Nitro), else the requested name (Xen). It may lag the attach. */
export async function waitForDevice(host: Host, volume: EbsVolume, requested: string, giveUpAt: number, pollMs: number): Promise<string> {
  for (let wait = Math.max(10, pollMs / 4); ; wait = Math.min(wait * 2, 2000)) {
    const device = await host.findDevice(volume.id, requested || undefined);
    if (device) return device;
    if (Date.now() >= giveUpAt) {
      throw new HostError(`volume ${volume.name} is attached as ${requested} but no device for ${volume.id} appeared on this node`, {
        volumeId: volume.id,
        device: requested,
      });
    }
    await delay(wait);
  }
}

/**
 * Invariant 9: what may hold data is never formatted: a volume with the formatted mark, one made
 * from a snapshot, and a move's copy (unless it copies a volume that was never attached).
 */
function neverFormat(volume: EbsVolume): string | undefined {
  if (volume.formatted) return 'it was formatted before';
  if (volume.restoredFrom) return `it was made from snapshot ${volume.restoredFrom}`;
  if (volume.movedFrom && !volume.blank) return `it is the copy of ${volume.movedFrom} made by a move`;
  return undefined;
}

/**
 * Invariant 2: the device must be the volume (NVMe serial, where readable), only a blank device is
 * formatted, and one with a filesystem is checked, then mounted as it is. `beforeMount` runs after
 * any mkfs and before the mount, told whether this was the volume's first mkfs and the filesystem's bytes.
 */
export async function prepareAndMount(
  nodeHost: Host,
  volume: EbsVolume,
  device: string,
  mountpoint: string,
  log: Logger,
  beforeMount: (formatted: boolean, filesystemBytes: number | undefined) => Promise<void>,
): Promise<void> {
  const host = nodeHost.withLog(log);
  const context = { volumeId: volume.id, device };
  const mounted = await host.mountAt(mountpoint);
  if (mounted) {
    if (mounted.source === device) return;
    throw new DataSafetyError(`${mountpoint} has ${mounted.source} mounted, not ${device} of volume ${volume.id}`, context);
  }
  const serial = await host.readSerial(device);
  if (serial !== undefined && serial.replace('-', '') !== volume.id.replace('-', '')) {
    throw new DataSafetyError(`device ${device} has serial ${serial}, not volume ${volume.id}; refusing to format or mount it`, context);
  }
  const probe = await host.probe(device);
  let fs = volume.fs;
  let formatted = false;
  if (!probe.hasSignature) {
    const why = neverFormat(volume);
    if (why) {
      throw new DataSafetyError(`device ${device} of volume ${volume.name} (${volume.id}) shows no filesystem, but ${why}; refusing to format it`, context);
    }
    log.info({ ...context, fs }, 'blank device: formatting');
    await host.mkfs(device, fs);
    formatted = true;
  } else if (isFilesystem(probe.fstype)) {
    if (probe.fstype !== fs) log.warn({ ...context, tagged: fs, found: probe.fstype }, 'filesystem differs from the volume tag; mounting what is there');
    fs = probe.fstype;
    await host.fsck(device, fs);
  } else {
    throw new DataSafetyError(`device ${device} of volume ${volume.id} holds ${probe.detail}, not an ext4 or xfs filesystem; refusing to format or mount it`, context);
  }
  // For the record in the volume's tags; a figure that cannot be read is no reason to keep the data unmounted.
  const measure = () => host.filesystemSize(device, fs).catch((err: unknown) => {
    log.warn({ ...context, err }, 'could not read the size of the filesystem');
    return undefined;
  });
  let size = await measure();
  // Grown by a modification while detached: ext4 grows here, before the mount (xfs only grows
  // mounted: FilesystemGrowth.afterMount). A grow that fails leaves the data as it was.
  const deviceBytes = await host.deviceSize(device).catch(() => 0);
  if (fs === 'ext4' && !formatted && size !== undefined && roomToGrow(deviceBytes, size)) {
    log.info({ ...context, filesystemMiB: toMiB(size) }, 'the device is bigger than its filesystem: growing it before the mount');
    await host.growFilesystem(device, fs).then(
      async () => (size = await measure()),
      (err: unknown) => log.error({ ...context, err }, 'could not grow the filesystem; mounting it at its old size'),
    );
  }
  await beforeMount(formatted, size);
  await host.mount(device, mountpoint, fs, volume.mountopts);
  // Right after the first mount, before the Mount answers and so before any task writes: one way
  // for ext4 and xfs (mkfs.xfs has no root_owner, and a mode needs a mount on either). Never again
  // later: the root is the task's from then on. mkfs makes it 0:0 0755 already.
  const { uid, gid, mode } = volume.rootOwner;
  if (formatted && (uid !== 0 || gid !== 0 || mode !== '0755')) await host.setRootOwner(mountpoint, volume.rootOwner);
}
