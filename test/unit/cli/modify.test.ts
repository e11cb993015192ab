/** `stowage modify` against a mocked EC2: what it sends, and what it refuses before sending anything. */
import {
  CreateTagsCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, DescribeVolumesModificationsCommand, EC2Client, ModifyVolumeCommand, type Volume,
} from '@aws-sdk/client-ec2';
import { DescribeAccessPointsCommand, EFSClient } from '@aws-sdk/client-efs';
import { mockClient } from 'aws-sdk-client-mock';
import { ExitCode } from '../../../cli/ops/exit-codes.js';
import { modifyCommand } from '../../../cli/ops/modify.js';
import { ec2Error } from '../aws/ec2-error.js';
import { runOps } from '../../helpers/run-ops.js';

const ec2 = mockClient(EC2Client);
const efs = mockClient(EFSClient);
const START = new Date('2026-12-01T10:00:00Z');

const volume: Volume = {
  VolumeId: 'vol-0123456789abcdef0', AvailabilityZone: 'us-east-1a', State: 'in-use', Size: 10, VolumeType: 'gp3', Iops: 3000, Throughput: 125,
  CreateTime: new Date(1000), Attachments: [{ InstanceId: 'i-0abc12345', State: 'attached', Device: '/dev/xvdba' }],
  Tags: Object.entries({ 'stowage:cluster': 'c1', 'stowage:volume': 'db1', 'stowage:backing': 'relocatable', 'stowage:generation': '1' }).map(([Key, Value]) => ({ Key, Value })),
};
const modification = (state: string, progress: number) => ({
  VolumeId: volume.VolumeId, ModificationState: state as 'optimizing', Progress: progress, StartTime: START,
  OriginalSize: 10, TargetSize: 20, OriginalVolumeType: 'gp3' as const, TargetVolumeType: 'gp3' as const, OriginalIops: 3000, TargetIops: 3000, OriginalThroughput: 125, TargetThroughput: 125,
});

function modify(argv: string[]) {
  return runOps(modifyCommand, [...argv, '--region', 'us-east-1'], { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: 'c1', STOWAGE_STATE_DIR: '/nonexistent' });
}

beforeEach(() => {
  ec2.reset();
  efs.reset();
  ec2.on(DescribeVolumesCommand).resolves({ Volumes: [volume] });
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  efs.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
});

test('a size only: ModifyVolume with Size alone, the modified-at tag, then progress until optimizing', async () => {
  ec2.on(DescribeVolumesModificationsCommand)
    .rejectsOnce(ec2Error('InvalidVolumeModification.NotFound'))
    .resolves({ VolumesModifications: [modification('optimizing', 50)] });
  ec2.on(ModifyVolumeCommand).resolves({ VolumeModification: modification('modifying', 0) });
  ec2.on(CreateTagsCommand).resolves({});
  const out = await modify(['db1', '--size', '20']);
  expect([out.code, out.stderr]).toEqual([ExitCode.ok, expect.stringContaining('db1 optimizing')]);
  expect(ec2.commandCalls(ModifyVolumeCommand)[0]!.args[0].input).toEqual({ VolumeId: volume.VolumeId, Size: 20 });
  expect(ec2.commandCalls(CreateTagsCommand)[0]!.args[0].input.Tags).toEqual([{ Key: 'stowage:modified-at', Value: START.toISOString() }]);
  expect(out.stdout).toContain('optimizing 50%: 10 → 20 GiB, gp3, 3000 IOPS, 125 MiB/s');
  expect(out.stdout).toContain('the node holding it (i-0abc12345) grows the filesystem online');
  expect(out.stdout).toContain('not before 2026-12-01T16:00:00.000Z');
});

test('a new type restates its IOPS; shrinking, nothing to change and a modification in progress are refused before ModifyVolume', async () => {
  ec2.on(DescribeVolumesModificationsCommand).resolves({ VolumesModifications: [modification('completed', 100)] });
  ec2.on(ModifyVolumeCommand).resolves({ VolumeModification: modification('completed', 100) });
  await modify(['db1', '--type', 'io2']);
  expect(ec2.commandCalls(ModifyVolumeCommand)[0]!.args[0].input).toEqual({ VolumeId: volume.VolumeId, VolumeType: 'io2', Iops: 3000 });
  ec2.resetHistory();

  const shrink = await modify(['db1', '--size', '5']);
  expect([shrink.code, shrink.stderr]).toEqual([ExitCode.usage, expect.stringContaining('invalid option --size="5": smaller than the volume\'s 10 GiB; EBS volumes never shrink')]);
  const same = await modify(['db1', '--iops', '3000']);
  expect([same.code, same.stderr]).toEqual([ExitCode.usage, expect.stringContaining('volume db1 already is 10 GiB gp3, 3000 IOPS, 125 MiB/s')]);
  ec2.on(DescribeVolumesModificationsCommand).resolves({ VolumesModifications: [modification('optimizing', 60)] });
  const busy = await modify(['db1', '--size', '30']);
  expect([busy.code, busy.stderr]).toEqual([ExitCode.refused, expect.stringContaining('is being modified already (optimizing 60%')]);
  expect(busy.stderr).toContain('once it completes and not before 2026-12-01T16:00:00.000Z');
  expect(ec2.commandCalls(ModifyVolumeCommand)).toHaveLength(0);
});

test('EC2\'s cooldown refusal names the last modification and when the next one is allowed', async () => {
  ec2.on(DescribeVolumesModificationsCommand).resolves({ VolumesModifications: [modification('completed', 100)] });
  ec2.on(ModifyVolumeCommand).rejects(ec2Error('VolumeModificationRateExceeded'));
  const out = await modify(['db1', '--size', '30']);
  expect([out.code, out.stderr]).toEqual([ExitCode.refused, expect.stringContaining('cannot be modified yet: its last modification started 2026-12-01T10:00:00.000Z and not before 2026-12-01T16:00:00.000Z')]);
});
