import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeleteVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  EC2Client,
  type Filter,
  type Instance,
  type Snapshot,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { ec2Error } from '../aws/ec2-error.js';

/**
 * A small EC2 model behind aws-sdk-client-mock: volumes and instances with the state transitions
 * the driver waits for (each transition completes at the next DescribeVolumes), the error codes EC2
 * answers with, and the exact list of calls made.
 */
export class FakeEc2 {
  readonly mock = mockClient(EC2Client);
  readonly client = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  readonly volumes = new Map<string, Volume>();
  readonly instances = new Map<string, Instance>();
  /** Snapshots complete at the second DescribeSnapshots that sees them, unless listed in slowSnapshots. */
  readonly snapshots = new Map<string, Snapshot>();
  readonly slowSnapshots = new Set<string>();
  /** Device names AttachVolume refuses with InvalidParameterValue. */
  readonly refusedDevices = new Set<string>();
  /** Attachments on these device names stay `attaching` forever. */
  readonly stuckDevices = new Set<string>();
  /** Called when an attachment completes / goes away, so a fake host can show the device. */
  onAttached: (volumeId: string, instanceId: string, device: string) => void = () => {};
  onDetached: (volumeId: string, instanceId: string) => void = () => {};
  private readonly failures = new Map<string, Error[]>();
  private readonly tokens = new Map<string, { id: string; params: string }>();
  private nextId = 1;

  constructor() {
    this.handle(DescribeVolumesCommand, (input: { Filters?: Filter[] }) => this.describeVolumes(input.Filters ?? []));
    this.handle(CreateVolumeCommand, (input) => this.handleCreateVolume(input));
    this.handle(AttachVolumeCommand, (input) => this.attachVolume(input));
    this.handle(DetachVolumeCommand, (input) => this.detachVolume(input));
    this.handle(DeleteVolumeCommand, (input) => this.deleteVolume(input));
    this.handle(DescribeInstancesCommand, (input) => this.describeInstances(input));
    this.handle(CreateTagsCommand, (input) => this.createTags(input));
    this.handle(DeleteTagsCommand, (input) => this.deleteTags(input));
    this.handle(CreateSnapshotCommand, (input) => this.createSnapshot(input));
    this.handle(DescribeSnapshotsCommand, (input) => this.describeSnapshots(input));
    this.handle(DeleteSnapshotCommand, (input) => this.deleteSnapshot(input));
  }

  /** The next call of `command` fails with `err` (then the ones queued after it); later calls behave as before. */
  failNext(command: { name: string }, ...errors: Error[]): void {
    this.failures.set(command.name, [...(this.failures.get(command.name) ?? []), ...errors]);
  }

  private handle(command: { name: string }, fake: (input: never) => unknown): void {
    this.mock.on(command as never).callsFake((input: unknown) => {
      const failure = this.failures.get(command.name)?.shift();
      return failure ? Promise.reject(failure) : fake(input as never);
    });
  }

  /** The operations sent, in order: ['DescribeVolumes', 'AttachVolume', …]. */
  sequence(): string[] {
    return this.mock.calls().map((c) => (c.args[0] as object).constructor.name.replace(/Command$/, ''));
  }

  resetCalls(): void {
    this.mock.resetHistory();
  }

  /** The input of the n-th call of one operation. */
  input(operation: string, n = 0): Record<string, unknown> {
    const calls = this.mock.calls().filter((c) => (c.args[0] as object).constructor.name === `${operation}Command`);
    return (calls[n]!.args[0] as unknown as { input: Record<string, unknown> }).input;
  }

  addInstance(id: string, zone: string, state = 'running', tags: Tag[] = []): void {
    this.instances.set(id, {
      InstanceId: id,
      State: { Name: state as 'running' },
      Placement: { AvailabilityZone: zone },
      Tags: tags,
      BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeId: 'vol-root' } }],
    });
  }

  /** A volume as Stowage would have created it. */
  addVolume(name: string, zone: string, extra: Partial<Volume> = {}, tags: Tag[] = []): string {
    const id = `vol-${String(this.nextId++).padStart(17, '0')}`;
    this.volumes.set(id, {
      VolumeId: id,
      AvailabilityZone: zone,
      State: 'available',
      Size: 10,
      VolumeType: 'gp3',
      Iops: 3000,
      Throughput: 125,
      Encrypted: true,
      CreateTime: new Date('2024-05-01T10:00:00Z'),
      Attachments: [],
      Tags: [
        { Key: 'stowage:cluster', Value: 'test' },
        { Key: 'stowage:volume', Value: name },
        { Key: 'stowage:backing', Value: 'relocatable' },
        { Key: 'stowage:generation', Value: '1' },
        { Key: 'stowage:fs', Value: 'ext4' },
        { Key: 'stowage:mountopts', Value: '' },
        ...tags,
      ],
      ...extra,
    });
    return id;
  }

  /** Attach directly (another node's doing). */
  attachNow(volumeId: string, instanceId: string, device: string, state = 'attached'): void {
    const v = this.volumes.get(volumeId)!;
    v.State = 'in-use';
    v.Attachments = [{ VolumeId: volumeId, InstanceId: instanceId, Device: device, State: state as 'attached', AttachTime: new Date() }];
    if (state === 'attached') this.onAttached(volumeId, instanceId, device);
  }

  private describeVolumes(filters: Filter[]) {
    // Every transition started before this call has completed by now.
    for (const v of this.volumes.values()) {
      if (v.State === 'creating') v.State = 'available';
      for (const a of v.Attachments ?? []) {
        if (a.State === 'attaching' && !this.stuckDevices.has(a.Device!)) {
          a.State = 'attached';
          this.onAttached(v.VolumeId!, a.InstanceId!, a.Device!);
        }
      }
      const detaching = (v.Attachments ?? []).filter((a) => a.State === 'detaching');
      for (const a of detaching) this.onDetached(v.VolumeId!, a.InstanceId!);
      v.Attachments = (v.Attachments ?? []).filter((a) => a.State !== 'detaching');
      if (v.State === 'in-use' && v.Attachments.length === 0) v.State = 'available';
    }
    const matches = (v: Volume) =>
      filters.every((f) => {
        if (f.Name === 'volume-id') return f.Values!.includes(v.VolumeId!);
        if (f.Name?.startsWith('tag:')) {
          const key = f.Name.slice(4);
          return (v.Tags ?? []).some((t) => t.Key === key && f.Values!.includes(t.Value!));
        }
        throw new Error(`filter ${f.Name} not modelled`);
      });
    return { Volumes: structuredClone([...this.volumes.values()].filter(matches)) };
  }

  /**
   * As EC2: a token is remembered with its parameters after its volume is gone; the same token with
   * the same parameters answers that volume (deleted or not), with others IdempotentParameterMismatch.
   */
  handleCreateVolume(input: { ClientToken?: string; SnapshotId?: string; AvailabilityZone?: string; Size?: number; VolumeType?: string; Iops?: number; Throughput?: number; Encrypted?: boolean; VolumeInitializationRate?: number; TagSpecifications?: { Tags?: Tag[] }[] }) {
    // As EC2: an initialization rate only for a volume made from a snapshot.
    if (input.VolumeInitializationRate !== undefined && !input.SnapshotId) throw ec2Error('InvalidParameterCombination');
    const params = JSON.stringify([input.AvailabilityZone, input.Size, input.VolumeType, input.Iops, input.Throughput, input.Encrypted, input.SnapshotId]);
    const known = input.ClientToken ? this.tokens.get(input.ClientToken) : undefined;
    if (known && known.params !== params) throw ec2Error('IdempotentParameterMismatch');
    if (known) return structuredClone(this.volumes.get(known.id) ?? { VolumeId: known.id, State: 'deleted' });
    const id = `vol-${String(this.nextId++).padStart(17, '0')}`;
    const volume: Volume = {
      VolumeId: id,
      AvailabilityZone: input.AvailabilityZone,
      State: 'creating',
      Size: input.Size,
      VolumeType: input.VolumeType as 'gp3',
      Iops: input.Iops,
      Throughput: input.Throughput,
      Encrypted: input.Encrypted,
      ...(input.SnapshotId && { SnapshotId: input.SnapshotId }),
      CreateTime: new Date(Date.parse('2024-05-02T10:00:00Z') + this.nextId * 1000),
      Attachments: [],
      Tags: input.TagSpecifications?.[0]?.Tags ?? [],
    };
    this.volumes.set(id, volume);
    if (input.ClientToken) this.tokens.set(input.ClientToken, { id, params });
    return structuredClone(volume);
  }

  private attachVolume(input: { VolumeId: string; InstanceId: string; Device: string }) {
    const v = this.volumes.get(input.VolumeId);
    if (!v) throw ec2Error('InvalidVolume.NotFound');
    const instance = this.instances.get(input.InstanceId);
    if (!instance) throw ec2Error('InvalidInstanceID.NotFound');
    if (instance.Placement?.AvailabilityZone !== v.AvailabilityZone) throw ec2Error('InvalidVolume.ZoneMismatch');
    if ((v.Attachments ?? []).length > 0) throw ec2Error('VolumeInUse');
    if (this.refusedDevices.has(input.Device)) throw ec2Error('InvalidParameterValue', 400, `Value (${input.Device}) for parameter device is invalid. ${input.Device} is already in use.`);
    v.State = 'in-use';
    const AttachTime = new Date();
    v.Attachments = [{ VolumeId: v.VolumeId, InstanceId: input.InstanceId, Device: input.Device, State: 'attaching', AttachTime }];
    return { VolumeId: v.VolumeId, InstanceId: input.InstanceId, Device: input.Device, State: 'attaching', AttachTime };
  }

  private detachVolume(input: { VolumeId: string; InstanceId?: string }) {
    const v = this.volumes.get(input.VolumeId);
    if (!v) throw ec2Error('InvalidVolume.NotFound');
    const a = (v.Attachments ?? []).find((x) => !input.InstanceId || x.InstanceId === input.InstanceId);
    if (!a) throw ec2Error('IncorrectState', 400, `Volume '${input.VolumeId}' is in the 'available' state.`);
    a.State = 'detaching';
    return { ...a };
  }

  private deleteVolume(input: { VolumeId: string }) {
    const v = this.volumes.get(input.VolumeId);
    if (!v) throw ec2Error('InvalidVolume.NotFound');
    if ((v.Attachments ?? []).length > 0) throw ec2Error('VolumeInUse');
    this.volumes.delete(input.VolumeId);
    return {};
  }

  private describeInstances(input: { InstanceIds?: string[] }) {
    const found = (input.InstanceIds ?? []).map((id) => {
      const instance = this.instances.get(id);
      if (!instance) throw ec2Error('InvalidInstanceID.NotFound', 400, `The instance ID '${id}' does not exist`);
      const attached = [...this.volumes.values()].flatMap((v) => (v.Attachments ?? []).filter((a) => a.InstanceId === id));
      return {
        ...structuredClone(instance),
        BlockDeviceMappings: [
          ...(instance.BlockDeviceMappings ?? []),
          ...attached.map((a) => ({ DeviceName: a.Device, Ebs: { VolumeId: a.VolumeId, Status: a.State } })),
        ],
      };
    });
    return { Reservations: [{ Instances: found }] };
  }

  private tagged(id: string): { Tags?: Tag[] } {
    const found = this.instances.get(id) ?? this.volumes.get(id);
    if (!found) throw ec2Error(id.startsWith('vol-') ? 'InvalidVolume.NotFound' : 'InvalidInstanceID.NotFound');
    return found;
  }

  private createTags(input: { Resources: string[]; Tags: Tag[] }) {
    for (const id of input.Resources) {
      const resource = this.tagged(id);
      const rest = (resource.Tags ?? []).filter((t) => !input.Tags.some((n) => n.Key === t.Key));
      resource.Tags = [...rest, ...input.Tags];
    }
    return {};
  }

  private deleteTags(input: { Resources: string[]; Tags: Tag[] }) {
    for (const id of input.Resources) {
      const resource = this.tagged(id);
      resource.Tags = (resource.Tags ?? []).filter((t) => !input.Tags.some((n) => n.Key === t.Key));
    }
    return {};
  }

  private createSnapshot(input: { VolumeId: string; TagSpecifications?: { Tags?: Tag[] }[] }) {
    const v = this.volumes.get(input.VolumeId);
    if (!v) throw ec2Error('InvalidVolume.NotFound');
    const id = `snap-${String(this.nextId++).padStart(17, '0')}`;
    const snapshot: Snapshot = {
      SnapshotId: id, VolumeId: v.VolumeId, State: 'pending', Progress: '0%', VolumeSize: v.Size,
      StartTime: new Date(Date.UTC(2024, 4, 3) + this.nextId * 1000), Tags: input.TagSpecifications?.[0]?.Tags ?? [],
    };
    this.snapshots.set(id, snapshot);
    return structuredClone(snapshot);
  }

  private describeSnapshots(input: { SnapshotIds?: string[]; Filters?: Filter[] }) {
    for (const s of this.snapshots.values()) {
      if (this.slowSnapshots.has(s.SnapshotId!)) s.Progress = '57%';
      else if (s.Progress === '0%') s.Progress = '50%';
      else if (s.State === 'pending') Object.assign(s, { State: 'completed', Progress: '100%' });
    }
    const ids = input.SnapshotIds ?? [];
    for (const id of ids) if (!this.snapshots.has(id)) throw ec2Error('InvalidSnapshot.NotFound');
    const matches = (s: Snapshot) =>
      (ids.length === 0 || ids.includes(s.SnapshotId!)) &&
      (input.Filters ?? []).every((f) => (s.Tags ?? []).some((t) => `tag:${t.Key}` === f.Name && f.Values!.includes(t.Value!)));
    return { Snapshots: structuredClone([...this.snapshots.values()].filter(matches)) };
  }

  private deleteSnapshot(input: { SnapshotId: string }) {
    if (!this.snapshots.delete(input.SnapshotId)) throw ec2Error('InvalidSnapshot.NotFound');
    return {};
  }
}
