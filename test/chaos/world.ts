/**
 * The chaos run's real side: three Stowage nodes (a1, a2 in zone a; b1 in zone b) in this process,
 * each a VolumeService over the EBS driver with its own instance, device folder, mount root and
 * state folder, on the fault bed's localcloud. A node can be killed (kill -9: nothing it started
 * reaches the cloud or the host again, its mounts stay) and started again from its state folder,
 * as the plugin process would be. The world also holds the invariant checks: the truth they read is
 * the emulator's own state file and the kernel's mountinfo, never a Describe that may lag.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { DeleteSnapshotCommand, DescribeSnapshotsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { createAwsClients } from '../../aws/clients.js';
import { StowageError } from '../../core/errors.js';
import { silentLogger } from '../../core/log.js';
import { Tags } from '../../core/schema/tags.js';
import type { EbsDriver } from '../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../host/host.js';
import { createLinuxHost } from '../../host/linux-host.js';
import { readMountinfo } from '../../host/mountinfo.js';
import type { FaultSpec } from '../../localcloud/index.js';
import { loopBackingFile } from '../../localcloud/loop.js';
import { Paths } from '../../localcloud/paths.js';
import type { CloudState, Volume } from '../../localcloud/state.js';
import { RefcountStore } from '../../plugin/refcounts.js';
import { VolumeService } from '../../plugin/volume-service.js';
import { isUnder } from '../fuzz/protocol-check.js';
import { CLUSTER, CREDENTIALS, FENCE_AFTER_MS, ZONE_A, ZONE_B, bedDriver, startFaultBed, type FaultBed, type Orphans } from '../faults/fault-bed.js';

/** Scaled down from dockerd's 2 minutes, as the fault bed scales fencing and stuck attachments. */
export const MOUNT_TIMEOUT_MS = 8000;
/** A node back from a kill or a hang has this long to notice and unmount a volume it lost meanwhile. */
const LOST_VOLUME_GRACE_MS = 4 * FENCE_AFTER_MS;

export type FaultKind = 'throttle' | '5xx' | 'stuck-attach' | 'slow-snapshot' | 'unresponsive' | 'kill' | 'cloud-restart';

export class Violation extends Error {
  constructor(readonly invariant: string, readonly detail: string) {
    super(`${invariant}: ${detail}`);
  }
}

interface Incarnation {
  service: VolumeService;
  driver: EbsDriver;
  ec2: EC2Client;
  life: { dead: boolean };
}

export interface ChaosNode {
  label: string;
  zone: string;
  instanceId: string;
  mountRoot: string;
  stateDir: string;
  current?: Incarnation;
  frozen: boolean;
  /** When it last came back from a kill or a hang. */
  backAt: number;
}

/** What the kernel shows mounted under the bed, with the volume behind each loop device. */
interface KernelMount {
  target: string;
  source: string;
  volumeId?: string;
  node?: ChaosNode;
}

/**
 * A host whose every call fails once its node is dead: an in-process "kill -9" must stop the
 * background work the node had started (a detach retried, a snapshot after unmount) as a dead
 * process would.
 */
function mortal(host: Host, life: { dead: boolean }, label: string): Host {
  return new Proxy(host, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (prop === 'withLog') return (...args: unknown[]) => mortal((value as (...a: unknown[]) => Host).apply(target, args), life, label);
      return (...args: unknown[]) => (life.dead ? Promise.reject(new Error(`${label} was killed`)) : (value as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}

export class ChaosWorld {
  readonly nodes: ChaosNode[] = [];
  /** Fault steps taken, by kind, over the whole run. */
  readonly faultCounts: Record<FaultKind, number> = { throttle: 0, '5xx': 0, 'stuck-attach': 0, 'slow-snapshot': 0, unresponsive: 0, kill: 0, 'cloud-restart': 0 };
  /** The current sequence's steps and what came of each. */
  trace: string[] = [];
  stepsDone = 0;
  /** Sees each step as it starts and as it ends (--verbose). */
  onStep?: (line: string) => void;
  /** Steps by kind and outcome: what the run exercised. */
  readonly stepKinds = new Map<string, number>();
  /** Cloud faults in force and for how many more steps. */
  private active = new Map<FaultKind, { spec: FaultSpec; steps: number }>();
  private readonly paths: Paths;

  private constructor(readonly bed: FaultBed, private readonly lagMs: number) {
    this.paths = new Paths(bed.lc.dir);
  }

  /** On a localcloud whose Describe calls may show the state of up to lagMs ago, drawn from the seed. */
  static async open(lagMs: number, seed: number): Promise<ChaosWorld> {
    const world = new ChaosWorld(await startFaultBed('chaos', { consistency: { mode: 'eventual', maxLagMs: lagMs, seed } }), lagMs);
    try {
      for (const [label, zone] of [['a1', ZONE_A], ['a2', ZONE_A], ['b1', ZONE_B]] as const) {
        world.nodes.push({
          label, zone, instanceId: await world.bed.startInstance(zone),
          mountRoot: path.join(world.bed.dir, `mnt-${label}`), stateDir: path.join(world.bed.dir, `state-${label}`), frozen: false, backAt: 0,
        });
      }
    } catch (err) {
      await world.bed.close();
      throw err;
    }
    return world;
  }

  /** A fresh start for one sequence: no volume, no fault, every node running with empty state. */
  async reset(): Promise<void> {
    for (const node of this.nodes) this.kill(node);
    this.calm();
    await this.sweep();
    for (const node of this.nodes) {
      await rm(node.stateDir, { recursive: true, force: true });
      await this.start(node);
    }
    this.trace = [];
  }

  /** The bed's sweep finds what to delete with Describe calls that may lag: sweep until the truth is empty. */
  private async sweep(): Promise<void> {
    for (let pass = 1; ; pass++) {
      await this.bed.sweep();
      const state = await this.truth();
      const left = [...state.volumes.filter((v) => v.state !== 'deleting'), ...state.snapshots].filter((r) => r.tags[Tags.cluster] === CLUSTER);
      if (left.length === 0) return;
      if (pass >= 10) throw new Error(`could not sweep the bed clean: ${left.map((r) => r.id).join(', ')}`);
      await this.settle();
    }
  }

  /** Waits until every Describe shows what is true now. */
  settle(): Promise<void> {
    return new Promise((r) => setTimeout(r, this.lagMs + 100));
  }

  async close(): Promise<void> {
    for (const node of this.nodes) this.kill(node);
    await this.bed.close();
  }

  /** As the plugin process starts: references from the state folder, then the driver lets go of what a crash left attached. */
  async start(node: ChaosNode): Promise<void> {
    const life = { dead: false };
    const { ec2 } = createAwsClients({ region: this.bed.lc.region, endpointUrl: this.bed.lc.url, credentials: CREDENTIALS });
    ec2.middlewareStack.add((next) => (args) => (life.dead ? Promise.reject(new Error(`${node.label} was killed`)) : next(args)), { step: 'initialize', name: 'chaosKill' });
    const host = mortal(createLinuxHost({ deviceDir: this.bed.lc.deviceDir(node.instanceId) }), life, node.label);
    const driver = bedDriver(ec2, host, this.bed.counter, { instanceId: node.instanceId, zone: node.zone, region: this.bed.lc.region }, node.mountRoot);
    const refcounts = new RefcountStore(node.stateDir, silentLogger);
    await refcounts.load(async (mountpoint) => (await host.mountAt(mountpoint)) !== undefined);
    driver.start();
    await driver.releaseUnmounted({ deadline: Date.now() + 20_000, log: silentLogger });
    const service = new VolumeService({
      drivers: [driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: MOUNT_TIMEOUT_MS, unclaimedGraceMs: 5000,
    });
    node.current = { service, driver, ec2, life };
    node.backAt = Date.now();
  }

  kill(node: ChaosNode): void {
    const inc = node.current;
    if (!inc) return;
    inc.life.dead = true;
    inc.driver.stop();
    inc.service.close();
    inc.ec2.destroy();
    node.current = undefined;
  }

  freeze(node: ChaosNode): void {
    node.frozen = true;
    this.applyFaults();
  }

  thaw(node: ChaosNode): void {
    node.frozen = false;
    node.backAt = Date.now();
    this.applyFaults();
  }

  /** Ends every fault: the clean-up after a sequence is the operator's, on a cloud that works again. */
  calm(): void {
    this.active.clear();
    for (const node of this.nodes.filter((n) => n.frozen)) {
      node.frozen = false;
      node.backAt = Date.now();
    }
    this.applyFaults();
  }

  /** A cloud fault for this step and the next `steps` - 1. */
  fault(kind: FaultKind, spec: FaultSpec, steps: number): void {
    this.active.set(kind, { spec, steps });
    this.applyFaults();
  }

  count(kind: FaultKind): void {
    this.faultCounts[kind]++;
  }

  /** One step: runs it, records it in the trace, checks the invariants, and ages the faults. */
  async step(kind: string, label: string, work: () => Promise<string>): Promise<void> {
    this.stepsDone++;
    const index = this.trace.length + 1;
    this.trace.push(`${index}. ${label}`);
    this.onStep?.(`${index}. ${label} …`);
    const outcome = await work();
    this.trace[index - 1] += ` → ${outcome}`;
    this.onStep?.(this.trace[index - 1]!);
    const counted = `${kind} ${/failed/.test(outcome) ? 'failed' : outcome.startsWith('skipped') ? 'skipped' : 'ok'}`;
    this.stepKinds.set(counted, (this.stepKinds.get(counted) ?? 0) + 1);
    for (const [kind, f] of this.active) if (--f.steps <= 0) this.active.delete(kind);
    this.applyFaults();
    await this.checkInvariants();
  }

  /** dockerd and Swarm as callers: a retryable error is met with another call. */
  async call<T>(op: () => Promise<T>, attempts: number): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return { ok: true, value: await op() };
      } catch (err) {
        const retryable = err instanceof StowageError && err.retryable;
        if (!retryable || attempt >= attempts) return { ok: false, error: err instanceof StowageError ? `${err.kind}: ${err.message}` : `not a StowageError: ${String(err)}` };
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }

  service(node: ChaosNode): VolumeService {
    if (!node.current) throw new Error(`${node.label} is not running`);
    return node.current.service;
  }

  async truth(): Promise<CloudState> {
    return JSON.parse(await readFile(this.paths.stateFile, 'utf8')) as CloudState;
  }

  /** The cluster's volumes carrying `name`, that still exist (not being deleted). */
  static named(state: CloudState, name: string): Volume[] {
    return state.volumes.filter((v) => v.tags[Tags.cluster] === CLUSTER && v.tags[Tags.volume] === name && v.state !== 'deleting');
  }

  async kernelMounts(): Promise<KernelMount[]> {
    const found: KernelMount[] = [];
    for (const m of (await readMountinfo()).filter((m) => isUnder(m.target, this.bed.dir))) {
      const backing = m.source.startsWith('/dev/loop') ? await loopBackingFile(m.source) : undefined;
      const image = backing !== undefined && path.dirname(backing) === this.paths.volumesDir ? path.basename(backing, '.img') : undefined;
      found.push({ target: m.target, source: m.source, ...(image && { volumeId: image }), ...this.ownerOf(m.target) });
    }
    return found;
  }

  private ownerOf(target: string): { node?: ChaosNode } {
    const node = this.nodes.find((n) => isUnder(target, n.mountRoot));
    return node ? { node } : {};
  }

  /**
   * A Mount's answer must be the volume: the topmost mount at that path comes from the device of
   * the live volume of that name, attached to this node's instance.
   */
  async checkMountAnswer(name: string, node: ChaosNode, mountpoint: string): Promise<void> {
    const state = await this.truth();
    const mounts = (await this.kernelMounts()).filter((m) => m.target === mountpoint);
    const top = mounts[mounts.length - 1];
    if (!top) throw new Violation('a Mount answered a path that is not a mount', `Mount ${name} on ${node.label} answered ${mountpoint}, which the kernel shows as no mount at all (a directory on the root disk)`);
    const volume = state.volumes.find((v) => v.id === top.volumeId);
    if (!volume || volume.tags[Tags.volume] !== name || volume.tags[Tags.cluster] !== CLUSTER) {
      throw new Violation('a Mount answered a path that is not a mount of that volume', `Mount ${name} on ${node.label} answered ${mountpoint}, mounted from ${top.source} (${top.volumeId ?? 'no volume of this cloud'}${volume ? `, volume ${volume.tags[Tags.volume]}` : ''})`);
    }
    if (volume.attachment?.instanceId !== node.instanceId) {
      throw new Violation('a Mount answered a path that is not a mount of that volume', `Mount ${name} on ${node.label} answered ${mountpoint} from ${volume.id}, which is attached to ${volume.attachment?.instanceId ?? 'no instance'}, not ${node.instanceId}`);
    }
  }

  /** Whether `node` may write to `mountpoint` now: as on EC2, I/O to a volume no longer attached to the instance fails. */
  async writable(name: string, node: ChaosNode, mountpoint: string): Promise<boolean> {
    if (node.frozen) return false;
    const state = await this.truth();
    const mount = (await this.kernelMounts()).filter((m) => m.target === mountpoint).pop();
    const volume = ChaosWorld.named(state, name).find((v) => v.id === mount?.volumeId);
    return volume?.attachment?.instanceId === node.instanceId && volume.attachment.state === 'attached';
  }

  /** The invariants that hold after every step. */
  async checkInvariants(): Promise<void> {
    const state = await this.truth();
    const names = new Set(state.volumes.filter((v) => v.tags[Tags.cluster] === CLUSTER).map((v) => v.tags[Tags.volume]!));
    for (const name of names) {
      const attached = ChaosWorld.named(state, name).filter((v) => v.attachment);
      if (attached.length > 1) {
        throw new Violation('one writer: two volumes of one name attached', `${name}: ${attached.map((v) => `${v.id} (${v.zone}) → ${v.attachment!.instanceId} ${v.attachment!.state}`).join(', ')}`);
      }
    }
    const copies = new Map<string, string[]>();
    for (const m of await this.kernelMounts()) {
      const volume = state.volumes.find((v) => v.id === m.volumeId);
      const name = volume?.tags[Tags.volume];
      if (!volume || name === undefined) continue;
      const lost = volume.attachment?.instanceId !== m.node?.instanceId;
      // A dead or hung node cannot have noticed yet that it was fenced.
      const excused = lost && m.node !== undefined && (m.node.current === undefined || m.node.frozen || Date.now() - m.node.backAt < LOST_VOLUME_GRACE_MS);
      if (excused) continue;
      if (lost) {
        throw new Violation('a node that lost a volume keeps it mounted', `${m.target} on ${m.node?.label ?? 'no node'} is still mounted from ${volume.id} (${name}), now attached to ${volume.attachment?.instanceId ?? 'no instance'}`);
      }
      copies.set(name, [...(copies.get(name) ?? []), `${m.target} (${volume.id})`]);
    }
    for (const [name, where] of copies) {
      if (where.length > 1) throw new Violation('one writer: two mounted copies of one name', `${name}: ${where.join(', ')}`);
    }
  }

  /** Operator snapshots that exist now: backups, which nothing but the operator may delete. */
  async operatorSnapshots(): Promise<string[]> {
    return (await this.truth()).snapshots.filter((s) => s.tags[Tags.cluster] === CLUSTER && s.tags[Tags.snapshotReason] === 'operator').map((s) => s.id);
  }

  /** The operator's own clean-up: snapshots taken with `stowage snapshot` are backups nobody else deletes. */
  async deleteOperatorSnapshots(): Promise<void> {
    const out = await this.bed.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${Tags.cluster}`, Values: [CLUSTER] }, { Name: `tag:${Tags.snapshotReason}`, Values: ['operator'] }] }));
    for (const s of out.Snapshots ?? []) await this.bed.ec2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId }));
  }

  async orphans(): Promise<Orphans> {
    return this.bed.orphans();
  }

  /** Pushes the faults in force: cloud faults of this step, and the hung instances. */
  private applyFaults(): void {
    const spec: FaultSpec = {};
    for (const f of this.active.values()) Object.assign(spec, f.spec);
    const hung = this.nodes.filter((n) => n.frozen).map((n) => n.instanceId);
    if (hung.length > 0) spec.unresponsiveInstances = hung;
    this.bed.faults(spec);
  }
}
