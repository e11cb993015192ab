import { AttachVolumeCommand, DescribeInstancesCommand, DetachVolumeCommand, type Volume } from '@aws-sdk/client-ec2';
import { VolumeWaiter } from '../../aws/volume-waiter.js';
import { delay } from '../../core/delay.js';
import { DataSafetyError, HostError } from '../../core/errors.js';
import { FILESYSTEMS, type Filesystem } from '../../core/volume-options.js';
import { DeviceNameAllocator } from '../../drivers/ebs/device-names.js';
import type { ProbeNode } from './adopt-node.js';
import type { OpsContext, RegionTarget } from './context.js';

/** Attach, device, detach: seconds on EC2; the limit only catches an attachment that never comes. */
const STEP_MS = 5 * 60_000;
const DEVICE_POLL_MS = 200;

const attachmentOn = (v: Volume | undefined, instanceId: string) =>
  (v?.Attachments ?? []).find((a) => a.InstanceId === instanceId && a.State !== 'detached');

/**
 * Reads the volume's filesystem with blkid on this node (read-only: nothing is mounted or
 * written), attaching it here first when it is detached and detaching it again afterwards, also
 * when the probe fails. No signature, or one that is not ext4/xfs, is refused: nothing to adopt.
 */
export async function probeFilesystem(ctx: OpsContext, target: RegionTarget, volume: Volume, node: ProbeNode): Promise<Filesystem> {
  const id = volume.VolumeId!;
  const say = (line: string) => ctx.io.stderr.write(`adopt ${id}: ${line}\n`);
  const waiter = new VolumeWaiter({ ec2: target.ec2, counter: ctx.counter, log: ctx.log, initialDelayMs: 250, maxDelayMs: 2000 });
  const context = { volumeId: id, instance: node.instanceId };
  const already = attachmentOn(volume, node.instanceId);
  let requested = already?.Device;
  if (!already) {
    const mapped = await ctx.aws('DescribeInstances', () => target.ec2.send(new DescribeInstancesCommand({ InstanceIds: [node.instanceId] })), context);
    const inUse = (mapped.Reservations ?? []).flatMap((r) => r.Instances ?? []).flatMap((i) => i.BlockDeviceMappings ?? []).flatMap((m) => (m.DeviceName ? [m.DeviceName] : []));
    requested = new DeviceNameAllocator().allocate(inUse);
    say(`attaching to this node (${node.instanceId}) as ${requested} to read its filesystem`);
    await ctx.aws('AttachVolume', () => target.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: node.instanceId, Device: requested })), context);
  }
  try {
    if (!already) {
      await waiter.waitFor(id, (v) => attachmentOn(v, node.instanceId)?.State === 'attached', { deadline: Date.now() + STEP_MS, what: `${id} attached to ${node.instanceId}`, log: ctx.log });
    }
    const device = await deviceOf(node, id, requested);
    const serial = await node.host.readSerial(device);
    if (serial !== undefined && serial.replace('-', '') !== id.replace('-', '')) {
      throw new DataSafetyError(`device ${device} has serial ${serial}, not volume ${id}; not reading it`, { ...context, device });
    }
    const probe = await node.host.probe(device);
    if (!probe.hasSignature) {
      throw new DataSafetyError(`${id} shows no filesystem (blkid found no signature on ${device}): nothing to adopt; make a new volume with docker volume create instead`, { ...context, device });
    }
    if (!(FILESYSTEMS as readonly string[]).includes(probe.fstype ?? '')) {
      throw new DataSafetyError(`${id} holds ${probe.detail}, not an ext4 or xfs filesystem, which is all Stowage mounts`, { ...context, device });
    }
    say(`found ${probe.fstype} on ${device}`);
    return probe.fstype as Filesystem;
  } finally {
    if (!already) {
      say(`detaching from this node`);
      await ctx.aws('DetachVolume', () => target.ec2.send(new DetachVolumeCommand({ VolumeId: id, InstanceId: node.instanceId })), context);
      await waiter.waitFor(id, (v) => !attachmentOn(v, node.instanceId), { deadline: Date.now() + STEP_MS, what: `${id} detached from ${node.instanceId}`, log: ctx.log });
    }
  }
}

/** The volume's block device on this node: by volume id (Nitro), else the requested name (Xen). */
async function deviceOf(node: ProbeNode, id: string, requested: string | undefined): Promise<string> {
  const giveUpAt = Date.now() + STEP_MS;
  for (;;) {
    const device = await node.host.findDevice(id, requested);
    if (device) return device;
    if (Date.now() >= giveUpAt) throw new HostError(`${id} is attached as ${requested ?? '?'} but no device for it appeared on this node`, { volumeId: id });
    await delay(DEVICE_POLL_MS);
  }
}
