import { groupVolumes, readRegion, type AccessPointRecord, type SnapshotRecord, type VolumeGroup } from './inventory.js';
import { inEveryRegion, type OpsContext } from './context.js';
import { age, printJson, regionErrors, reportRegionFailures, table } from './output.js';
import type { OpsCommand } from './command.js';
import type { ParsedArgs } from './args.js';
import { SHARED_ROOT_FLAG, shareFolders, type ShareFolderRecord } from './share-folders.js';

/** One line of `stowage ls`: a volume as an operator looks for it. */
export interface VolumeRow {
  name: string;
  backing: string;
  region: string;
  zone: string;
  size: number | undefined;
  type: string;
  state: string;
  attachedTo: string;
  generation: number | undefined;
  lastSnapshot: { id: string; state: string; startedAt: string | undefined } | undefined;
  /** The other volumes of the name while a move runs (or what it left behind), as `zone:vol-id`. */
  moving: string;
}

export function relocatableRow(group: VolumeGroup, snapshots: SnapshotRecord[]): VolumeRow {
  const v = group.current;
  const last = snapshots.find((s) => s.name === group.name && s.region === group.region);
  return {
    name: v.name,
    backing: 'relocatable',
    region: v.region,
    zone: v.zone,
    size: v.size,
    type: v.type,
    state: v.state,
    attachedTo: v.attachment ? `${v.attachment.instanceId}${v.attachment.state === 'attached' ? '' : ` (${v.attachment.state})`}` : '',
    generation: v.generation,
    lastSnapshot: last && { id: last.id, state: last.state, startedAt: last.startedAt?.toISOString() },
    moving: group.others.map((o) => `${o.zone}:${o.id} (gen ${o.generation}, ${o.state})`).join(', '),
  };
}

function sharedRow(ap: AccessPointRecord): VolumeRow {
  return {
    name: ap.name, backing: 'shared', region: ap.region, zone: '', size: undefined, type: `efs ${ap.fileSystemId}`, state: ap.state,
    attachedTo: '', generation: undefined, lastSnapshot: undefined, moving: '',
  };
}

function folderRow(f: ShareFolderRecord): VolumeRow {
  return {
    name: f.name, backing: 'shared', region: '', zone: '', size: undefined, type: `dir ${f.share}`, state: 'available',
    attachedTo: '', generation: undefined, lastSnapshot: undefined, moving: '',
  };
}

const USAGE = `Usage: stowage ls [--region R ...|--all-regions] [--cluster C] [--endpoint [REGION=]URL ...] [--shared-root PATH] [--json]

Every Stowage volume of the cluster, in every region asked, read from AWS tags (no plugin needed).
One paginated, tag-filtered Describe per region and kind of resource; regions are read in parallel.
Shared volumes in directory mode are folders on their share, which AWS cannot see into: they are
read where the share is mounted, --shared-root PATH or those the plugin on this machine mounted
under STOWAGE_MOUNT_ROOT/.shares/.

Examples:
  stowage ls --region us-east-1 --region eu-west-1
  stowage ls --all-regions --cluster prod --json | jq '.volumes[] | select(.attachedTo == "")'
  stowage ls --endpoint us-east-1=http://127.0.0.1:4566 --endpoint eu-west-1=http://127.0.0.1:4567
`;

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const [results, folders] = await Promise.all([inEveryRegion(ctx, (t) => readRegion(ctx, t)), shareFolders(ctx, args)]);
  // No table when nothing answered: an empty one would read as "no volumes".
  if (!ctx.json && results.every((r) => !r.ok)) return reportRegionFailures(ctx, results);
  const rows = results.flatMap((r) => {
    if (!r.ok) return [];
    const relocatable = groupVolumes(r.value.volumes).map((g) => relocatableRow(g, r.value.snapshots));
    return [...relocatable, ...r.value.accessPoints.map(sharedRow)];
  });
  // An access point's directory is on the share too: it is listed once, as its access point.
  const named = new Set(rows.filter((r) => r.backing === 'shared').map((r) => r.name));
  rows.push(...folders.filter((f) => !named.has(f.name)).map(folderRow));
  rows.sort((a, b) => a.name.localeCompare(b.name) || a.region.localeCompare(b.region));
  if (ctx.json) {
    printJson(ctx, { cluster: ctx.cluster, regions: results.map((r) => r.region), volumes: rows, errors: regionErrors(results) });
  } else {
    const headers = ['NAME', 'BACKING', 'REGION', 'ZONE', 'SIZE', 'TYPE', 'STATE', 'ATTACHED', 'GEN', 'LAST SNAPSHOT', 'MOVE'];
    ctx.io.stdout.write(
      table(
        headers,
        rows.map((r) => [
          r.name, r.backing, r.region, r.zone, r.size === undefined ? '' : `${r.size}G`, r.type, r.state, r.attachedTo,
          r.generation === undefined ? '' : String(r.generation),
          r.lastSnapshot ? `${r.lastSnapshot.id} ${r.lastSnapshot.state === 'completed' ? age(r.lastSnapshot.startedAt ? new Date(r.lastSnapshot.startedAt) : undefined) + ' ago' : r.lastSnapshot.state}` : '',
          r.moving,
        ]),
      ),
    );
  }
  return reportRegionFailures(ctx, results);
}

export const lsCommand: OpsCommand = { name: 'ls', usage: USAGE, flags: SHARED_ROOT_FLAG, positionals: 0, run };
