import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../../host/host.js';
import { writeAtomically } from '../../core/atomic-file.js';
import type { Logger } from '../../core/log.js';
import { PLAIN_NFS_OPTIONS, type Mounter } from '../shared/mounter.js';
import { ShareDriver, resumeHolders, type SharedDriver, type ShareLocator, type ShareRef } from '../shared/share-driver.js';
import { ShareRoots } from '../shared/share-roots.js';
import { Holders, type HolderTiming } from '../shared/volume-holders.js';

export interface NfsDriverDeps {
  host: Host;
  mounter: Mounter;
  cluster: string;
  mountRoot: string;
  /** Where the shares this node was given are remembered across restarts. */
  stateDir: string;
  sharedDelete: boolean;
  /** This node's name in the holder records on the shares: its instance id (default: the host name). */
  node?: string;
  holderTiming?: HolderTiming;
  log: Logger;
  cacheTtlMs?: number;
}

/** `host:/export` → server and export path (options.ts has checked the form). */
function splitShare(share: string): { server: string; exportPath: string } {
  const colon = share.indexOf(':');
  return { server: share.slice(0, colon), exportPath: share.slice(colon + 1).replace(/\/+$/, '') };
}

function shareRef(share: string): ShareRef {
  const key = `nfs-${createHash('sha256').update(share).digest('hex').slice(0, 16)}`;
  return { key, options: { share }, status: { share } };
}

/**
 * `backing=nfs`: a directory per volume, `/stowage/<cluster>/<name>` under the export given by
 * `share=host:/export`. Nothing in AWS knows these volumes, so each node remembers the shares it was
 * given in its state folder; dockerd's Create (which carries the share) reaches every node that
 * runs a task of the volume before its Mount does.
 */
export async function createNfsDriver(deps: NfsDriverDeps): Promise<SharedDriver> {
  const file = join(deps.stateDir, 'nfs-shares.json');
  const shares = new Map<string, ShareRef>();
  try {
    for (const share of JSON.parse(await readFile(file, 'utf8')) as string[]) shares.set(share, shareRef(share));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') deps.log.warn({ err, file }, 'cannot read the remembered NFS shares; starting without them');
  }
  const locator: ShareLocator = {
    backing: 'nfs',
    known: () => [...shares.values()],
    async forCreate(options, ctx) {
      const share = options.share!;
      if (!shares.has(share)) {
        shares.set(share, shareRef(share));
        await mkdir(deps.stateDir, { recursive: true });
        await writeAtomically(file, JSON.stringify([...shares.keys()]));
        ctx.log.info({ share }, 'new NFS share remembered');
      }
      return shares.get(share)!;
    },
    async source(share, path) {
      const { server, exportPath } = splitShare(share.options.share!);
      return { server, path: path === '/' ? exportPath || '/' : `${exportPath}${path}`, options: PLAIN_NFS_OPTIONS };
    },
  };
  const roots = new ShareRoots({ mounter: deps.mounter, host: deps.host, mountRoot: deps.mountRoot });
  const holders = new Holders({ ...(deps.node !== undefined && { node: deps.node }), ...(deps.holderTiming && { timing: deps.holderTiming }) });
  const driver = new ShareDriver({
    locator, roots, holders, mounter: deps.mounter, host: deps.host, cluster: deps.cluster, mountRoot: deps.mountRoot, sharedDelete: deps.sharedDelete,
    ...(deps.cacheTtlMs !== undefined && { cacheTtlMs: deps.cacheTtlMs }),
  });
  resumeHolders(driver, deps.log);
  return Object.assign(driver, { close: async (log: Logger) => (await holders.stop(), roots.close(log)) });
}
