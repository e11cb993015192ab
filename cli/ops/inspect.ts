import { describeInitialization, describeModification, readInitialization, readModification, type Send } from '../../aws/volume-progress.js';
import { Tags } from '../../core/schema/tags.js';
import type { OpsCommand } from './command.js';
import type { OpsContext } from './context.js';
import type { ParsedArgs } from './args.js';
import type { RegionInventory } from './inventory.js';
import { locateVolume, type LocatedVolume } from './locate.js';
import { SHARED_ROOT_FLAG, shareFolders, type ShareFolderRecord } from './share-folders.js';
import { VolumeNotFoundError } from '../../core/errors.js';
import { age, printJson, table } from './output.js';

/** One entry of a volume's history, read back from tags and creation times. */
export interface HistoryEvent {
  at: string | undefined;
  what: string;
}

/**
 * Each generation is a volume the name lived on (a cross-zone move makes the next one from a
 * snapshot); snapshots say when and why they were taken. Deleted generations show through the
 * snapshots that captured them.
 */
export function moveHistory(inv: RegionInventory): HistoryEvent[] {
  const events: HistoryEvent[] = [
    ...inv.volumes.map((v) => ({
      at: v.createdAt?.toISOString(),
      what: `generation ${v.generation} created in ${v.zone} as ${v.id}${v.snapshot ? ` from ${v.snapshot}` : ''}${v.movedFrom ? ` (copy of ${v.movedFrom})` : ''}; now ${v.state}`,
    })),
    ...inv.snapshots.map((s) => ({
      at: s.startedAt?.toISOString(),
      what: `snapshot ${s.id} of generation ${s.generation} (${s.volumeId ?? 'unknown volume'}, ${s.tags[Tags.snapshotReason] ?? 'no reason tag'}): ${s.state}${s.state === 'pending' ? ` ${s.progress}%` : ''}`,
    })),
  ];
  return events.sort((a, b) => (a.at ?? '').localeCompare(b.at ?? ''));
}

const USAGE = `Usage: stowage inspect NAME [--region R ...|--all-regions] [--cluster C] [--endpoint [REGION=]URL ...] [--shared-root PATH] [--json]

Everything about one volume: its EBS volume(s) (more than one while a move runs), attachment,
tags, snapshots, and its move history as the tags record it. A shared volume in directory mode is
a folder on its share, read where the share is mounted (see stowage ls --help).

Examples:
  stowage inspect db1 --region us-east-1
  stowage inspect db1 --all-regions --json | jq '.snapshots[0]'
`;

function printFolder(ctx: OpsContext, f: ShareFolderRecord): number {
  if (ctx.json) {
    printJson(ctx, { name: f.name, cluster: ctx.cluster, backing: 'shared', folder: f });
    return 0;
  }
  ctx.io.stdout.write(
    [
      `Name:      ${f.name}`, `Cluster:   ${ctx.cluster}`, `Backing:   shared (a directory on ${f.share})`,
      `Path:      ${f.path} (mounted here at ${f.shareRoot})`, `Owner:     ${f.uid}:${f.gid}, mode ${f.mode}`, `Created:   ${f.createdAt ?? 'unknown'}`,
    ].join('\n') + '\n',
  );
  return 0;
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = args.positionals[0]!;
  let located: LocatedVolume;
  try {
    located = await locateVolume(ctx, name);
  } catch (err) {
    // No AWS resource: a shared volume in directory mode has none.
    const folder = err instanceof VolumeNotFoundError ? (await shareFolders(ctx, args)).find((f) => f.name === name) : undefined;
    if (!folder) throw err;
    return printFolder(ctx, folder);
  }
  const { inventory, group } = located;
  const history = moveHistory(inventory);
  const v = group?.current;
  const { ec2 } = ctx.targets.find((t) => t.region === inventory.region)!;
  const send: Send = (operation, call) => ctx.aws(operation, call, { volume: name, volumeId: v?.id, region: inventory.region });
  const [modification, initialization] = v
    ? await Promise.all([readModification(ec2, v.id, send), v.restoredFrom ? readInitialization(ec2, v.id, send) : undefined])
    : [undefined, undefined];
  if (ctx.json) {
    printJson(ctx, {
      name, region: inventory.region, cluster: ctx.cluster,
      current: v, others: group?.others ?? [], accessPoints: inventory.accessPoints,
      modification, initialization, snapshots: inventory.snapshots, history,
    });
    return 0;
  }
  const out: string[] = [`Name:      ${name}`, `Cluster:   ${ctx.cluster}`, `Region:    ${inventory.region}`];
  if (v) {
    out.push(
      `Backing:   relocatable`, `Volume:    ${v.id} (${v.state})`, `Zone:      ${v.zone}`,
      `Size:      ${v.size} GiB ${v.type}${v.iops ? `, ${v.iops} IOPS` : ''}${v.throughput ? `, ${v.throughput} MiB/s` : ''}${v.encrypted ? ', encrypted' : ''}`,
      `Generation: ${v.generation}`,
      `Filesystem: ${v.fs}${v.mountopts.length ? ` (${v.mountopts.join(',')})` : ''}${v.filesystemMiB !== undefined ? `, ${v.filesystemMiB} MiB as its holder last measured` : ''}`,
      ...(modification ? [`Modified:  ${describeModification(modification)}`, `           next modification once it completes${modification.nextAllowedAt ? ` and not before ${modification.nextAllowedAt.toISOString()}` : ''}`] : []),
      ...(initialization ? [`Initialized: ${describeInitialization(initialization)}${v.initRate !== undefined ? `, initrate ${v.initRate} MiB/s` : ''}`] : []),
      `Attached:  ${v.attachment ? `${v.attachment.instanceId} ${v.attachment.state}${v.attachment.device ? ` as ${v.attachment.device}` : ''}` : 'no'}`,
      `Created:   ${v.createdAt?.toISOString() ?? 'unknown'}`,
    );
    if (group.others.length > 0) out.push(`Also:      ${group.others.map((o) => `${o.id} in ${o.zone} (generation ${o.generation}, ${o.state})`).join('; ')}`);
  }
  for (const ap of inventory.accessPoints) out.push(`Backing:   shared`, `Access point: ${ap.id} on ${ap.fileSystemId} (${ap.state})`);
  out.push('', 'Snapshots:');
  out.push(
    inventory.snapshots.length === 0
      ? '  none\n'
      : table(['SNAPSHOT', 'STATE', 'PROGRESS', 'GEN', 'FROM', 'AGE'], inventory.snapshots.map((s) => [s.id, s.state, `${s.progress}%`, String(s.generation), s.volumeId ?? '', age(s.startedAt)])),
  );
  out.push('History:', ...history.map((e) => `  ${e.at ?? '(time unknown)'}  ${e.what}`));
  ctx.io.stdout.write(out.join('\n') + '\n');
  return 0;
}

export const inspectCommand: OpsCommand = { name: 'inspect', usage: USAGE, flags: SHARED_ROOT_FLAG, positionals: 1, run };
