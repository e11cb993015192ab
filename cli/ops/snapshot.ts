import { CreateSnapshotCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { snapshotTags } from '../../core/schema/snapshot-record.js';
import { restorableTags } from '../../core/schema/restorable.js';
import { CloudError, UnsupportedError } from '../../core/errors.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import type { OpsContext } from './context.js';
import { ExitCode } from './exit-codes.js';
import { locateVolume } from './locate.js';
import { printJson } from './output.js';
import { pause, progressLine } from './progress.js';

const USAGE = `Usage: stowage snapshot NAME [--wait] [--region R ...] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Takes an on-demand EBS snapshot of a relocatable volume, tagged like the plugin's own snapshots
(cluster, volume, generation, reason "operator"), so retention counts it. An attached volume gives a
crash-consistent snapshot; unmount it first for a clean one. --wait shows progress until completed.

Examples:
  stowage snapshot db1 --region us-east-1
  stowage snapshot db1 --wait --json
`;

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = args.positionals[0]!;
  const { inventory, group } = await locateVolume(ctx, name);
  if (!group) throw new UnsupportedError(`volume ${name} has no EBS volume to snapshot (shared volumes live on EFS; use AWS Backup for them)`, { volume: name });
  const volume = group.current;
  const target = ctx.targets.find((t) => t.region === inventory.region)!;
  const context = { volume: name, volumeId: volume.id, zone: volume.zone, region: inventory.region };
  const started = Date.now();
  const out = await ctx.aws(
    'CreateSnapshot',
    () =>
      target.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volume.id,
          Description: `stowage operator snapshot of ${name} generation ${volume.generation}`,
          TagSpecifications: [
            {
              ResourceType: 'snapshot',
              Tags: [...snapshotTags(ctx.cluster, { name, id: volume.id, generation: volume.generation, lastAttach: volume.lastAttach }, 'operator'), ...restorableTags(ctx.cluster, volume)],
            },
          ],
        }),
      ),
    context,
  );
  const snapshotId = out.SnapshotId!;
  ctx.log.info({ ...context, snapshotId, requestId: out.$metadata.requestId, ms: Date.now() - started }, 'snapshot started');
  let state: string = out.State ?? 'pending';
  if (args.flags.has('wait')) state = await waitCompleted(ctx, target.ec2, snapshotId, context);
  if (ctx.json) printJson(ctx, { name, region: inventory.region, volumeId: volume.id, snapshotId, state });
  else ctx.io.stdout.write(`${snapshotId} ${state} (volume ${name}, ${volume.id}, ${inventory.region})\n`);
  return ExitCode.ok;
}

/** Polls with backoff, drawing progress on stderr, until completed, failed, or Ctrl-C. */
async function waitCompleted(
  ctx: OpsContext,
  ec2: OpsContext['targets'][number]['ec2'],
  snapshotId: string,
  context: Record<string, string>,
): Promise<string> {
  const bar = progressLine(ctx.io.stderr);
  for (let wait = 500; ; wait = Math.min(wait * 1.6, 15_000)) {
    const found = await ctx.aws('DescribeSnapshots', () => ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })), { ...context, snapshotId });
    const s = found.Snapshots?.[0];
    const percent = Number.parseInt(s?.Progress ?? '0', 10) || 0;
    bar.show(`snapshot ${snapshotId}`, s?.State === 'completed' ? 100 : percent);
    if (s?.State === 'completed') {
      bar.done();
      return 'completed';
    }
    if (s?.State === 'error') {
      bar.done();
      throw new CloudError(`snapshot ${snapshotId} failed (state error): ${s.StateMessage ?? 'EC2 gave no reason'}`, 'SnapshotFailed', { ...context, snapshotId });
    }
    if (ctx.io.signal.aborted) {
      bar.done();
      return s?.State ?? 'pending';
    }
    await pause(wait, ctx.io.signal);
  }
}

export const snapshotCommand: OpsCommand = { name: 'snapshot', usage: USAGE, flags: { wait: 'switch' }, positionals: 1, run };
