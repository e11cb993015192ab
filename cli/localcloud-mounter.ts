import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Mounter } from '../drivers/shared/mounter.js';
import { bindFlagsOf, type Host } from '../host/host.js';
import { HostError } from '../core/errors.js';

interface MountTargetEntry {
  fileSystemId: string;
  availabilityZone: string;
  path: string;
}

/**
 * localcloud's stand-in for NFS (this kernel may have no NFS client): a mount target's address
 * resolves, through localcloud's `efs/mount-targets.json`, to the file system's folder, and the
 * wanted folder below it is bind-mounted. The drivers run unchanged; only this resolver knows.
 * An access point is entered at its root directory; its PosixUser is not enforced here.
 */
export function createLocalcloudMounter(host: Host, mountTargetsFile: string): Mounter {
  return {
    async mount(source, target, log) {
      let table: Record<string, MountTargetEntry>;
      try {
        table = JSON.parse(await readFile(mountTargetsFile, 'utf8')) as Record<string, MountTargetEntry>;
      } catch (err) {
        throw new HostError(`cannot read localcloud's mount targets (${mountTargetsFile}): ${String(err)}`, {}, { cause: err });
      }
      const entry = table[source.server];
      if (!entry) {
        throw new HostError(
          `localcloud has no mount target at ${source.server} (it has: ${Object.keys(table).join(', ') || 'none'}); ` +
            'on localcloud an NFS share must be host:/path with host a mount target address',
        );
      }
      const ap = source.accessPoint;
      if (ap && ap.fileSystemId !== entry.fileSystemId) {
        throw new HostError(`mount target ${source.server} serves ${entry.fileSystemId}, not ${ap.fileSystemId}`);
      }
      const folder = join(entry.path, ap?.rootDirectory ?? '/', source.path);
      const flags = bindFlagsOf(source.options);
      log.debug({ server: source.server, folder, target, flags }, 'localcloud: bind-mounting the mount target folder');
      await host.withLog(log).bindMount(folder, target, flags);
    },
  };
}
