import type { Host, NfsMountType } from '../../host/host.js';
import type { Logger } from '../../core/log.js';

/** AWS's recommended client options for EFS (NFS 4.1, 1 MiB transfers, hard mounts, new port on reconnect). */
export const EFS_NFS_OPTIONS: readonly string[] = ['nfsvers=4.1', 'rsize=1048576', 'wsize=1048576', 'hard', 'timeo=600', 'retrans=2', 'noresvport'];

/**
 * The same minus what is EFS-specific: the version and transfer sizes are left to negotiate with
 * the server, and `noresvport` (which some servers refuse, `secure` exports) is not forced.
 */
export const PLAIN_NFS_OPTIONS: readonly string[] = ['hard', 'timeo=600', 'retrans=2'];

/**
 * Per-mount flags of everything mounted from a share: whoever can write to the share must not get
 * a device node or a set-id program honoured on this node. The management mount (a share's root,
 * where only Stowage reads and writes) runs nothing either.
 */
export const VOLUME_FLAGS: readonly string[] = ['nosuid', 'nodev'];
export const SHARE_ROOT_FLAGS: readonly string[] = [...VOLUME_FLAGS, 'noexec'];

/** `source` with `flags` added to its mount options. */
export function withFlags(source: ShareSource, flags: readonly string[]): ShareSource {
  return { ...source, options: [...source.options, ...flags.filter((f) => !source.options.includes(f))] };
}

/** An EFS access point: the mount helper enters it; a bind-mounting mounter needs its root folder. */
export interface AccessPointRef {
  id: string;
  fileSystemId: string;
  /** Absolute path of the access point's root on the file system. */
  rootDirectory: string;
}

/** A folder of an NFS server to mount, directly or through an EFS access point. */
export interface ShareSource {
  /** The server: a mount target's IP address, or a host name. */
  server: string;
  /** Absolute path on the server; through an access point, relative to its root. */
  path: string;
  options: readonly string[];
  accessPoint?: AccessPointRef;
}

/** How a share reaches this node's tree: an NFS mount on AWS, a bind mount of a folder on localcloud. */
export interface Mounter {
  mount(source: ShareSource, target: string, log: Logger): Promise<void>;
}

/** The host call that mounts `source`: kernel NFS, or the EFS mount helper for an access point. */
export function nfsMountCall(source: ShareSource): { device: string; options: string[]; type: NfsMountType } {
  const ap = source.accessPoint;
  if (!ap) return { device: `${source.server}:${source.path}`, options: [...source.options], type: 'nfs4' };
  // The helper takes the file system id; mounttargetip keeps the zone's mount target we chose
  // (and works where the file system's DNS name does not resolve).
  return {
    device: `${ap.fileSystemId}:${source.path}`,
    options: ['tls', `accesspoint=${ap.id}`, `mounttargetip=${source.server}`, ...source.options],
    type: 'efs',
  };
}

/** The mounter for real NFS servers and EFS. */
export function createNfsMounter(host: Host): Mounter {
  return {
    async mount(source, target, log) {
      const { device, options, type } = nfsMountCall(source);
      log.debug({ device, target, type, options }, 'mounting NFS share');
      await host.withLog(log).mountNfs(device, target, options, type);
    },
  };
}
