/**
 * The chaos run's steps as fast-check commands over a model of what Docker and Swarm know: which
 * names exist, who holds each (node, mount IDs, the path the Mount answered), how many records were
 * written, and how many of them an Unmount that succeeded made durable. A step's preconditions are
 * Swarm's: a task moves to another node only when its node is gone or it is stopped first.
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { RELOCATABLE_OPTS, operatorCommand } from './operator.js';
import { appendRecords, readRecords } from './records.js';
import { ChaosWorld, Violation, type FaultKind } from './world.js';

export const NAMES = ['cv0', 'cv1', 'cv2'];

interface Holder {
  node: number;
  ids: string[];
  mountpoint: string;
}

interface VolumeModel {
  /** One life of the name: from a Create to its Remove. */
  life: string;
  written: number;
  /** Records an Unmount that succeeded covered: the next Mount must read them all. */
  durable: number;
  holder?: Holder;
}

export interface Model {
  volumes: Map<string, VolumeModel>;
  nodes: { dead: boolean; frozen: boolean }[];
  /** Mount IDs of tasks Swarm moved away from a node that was down: dockerd there unmounts them once it is back. */
  abandoned: { node: number; name: string; id: string }[];
  /** The step budget of the whole run, spent across sequences; off while shrinking. */
  budget: { left: number };
  nextId: number;
}

export function freshModel(nodes: number, budget: { left: number }): Model {
  return { volumes: new Map(), nodes: Array.from({ length: nodes }, () => ({ dead: false, frozen: false })), abandoned: [], budget, nextId: 0 };
}

const up = (m: Model, n: number) => !m.nodes[n]!.dead && !m.nodes[n]!.frozen;
const downCount = (m: Model) => m.nodes.filter((n) => n.dead || n.frozen).length;

type Cmd = fc.AsyncCommand<Model, ChaosWorld>;

abstract class Step implements Cmd {
  abstract toString(): string;
  protected abstract ready(m: Model): boolean;
  protected abstract act(m: Model, w: ChaosWorld): Promise<string>;

  check(m: Readonly<Model>): boolean {
    return m.budget.left > 0 && this.ready(m as Model);
  }

  async run(m: Model, w: ChaosWorld): Promise<void> {
    m.budget.left--;
    await w.step(this.constructor.name, this.describe(m), () => this.act(m, w));
  }

  /** The step as the trace shows it, with what it resolved to in this model. */
  protected describe(_m: Model): string {
    return this.toString();
  }
}

/**
 * A step on one of the names: the first, from the drawn one on, that the step fits, so that a
 * drawn step seldom goes unused (a Write when the drawn name is not mounted writes to one that is).
 */
abstract class VolumeStep extends Step {
  constructor(readonly v: number) {
    super();
  }
  protected abstract fits(m: Model, name: string): boolean;
  protected abstract on(m: Model, w: ChaosWorld, name: string): Promise<string>;
  protected abstract text(name: string): string;

  protected pick(m: Model): string | undefined {
    return NAMES.map((_, i) => NAMES[(this.v + i) % NAMES.length]!).find((name) => this.fits(m, name));
  }
  ready(m: Model) {
    return this.pick(m) !== undefined;
  }
  act(m: Model, w: ChaosWorld) {
    return this.on(m, w, this.pick(m)!);
  }
  protected override describe(m: Model) {
    return this.text(this.pick(m)!);
  }
  toString() {
    return this.text(`volume #${this.v}`);
  }
}

const label = (n: number) => ['a1', 'a2', 'b1'][n]!;

/** A Mount that succeeded: check its answer and the data behind it, then record the new holder. */
async function mounted(m: Model, w: ChaosWorld, name: string, n: number, id: string, mountpoint: string): Promise<string> {
  const node = w.nodes[n]!;
  const v = m.volumes.get(name)!;
  await w.checkMountAnswer(name, node, mountpoint);
  const back = await readRecords(mountpoint, v.life);
  if (back.damage) throw new Violation('data read back intact', `Mount ${name} on ${node.label}: ${back.damage}`);
  if (back.count < v.durable) {
    throw new Violation('every write fsynced before a successful Unmount is read back', `Mount ${name} on ${node.label} (${mountpoint}) reads ${back.count} records; ${v.durable} were fsynced before an Unmount that succeeded`);
  }
  if (v.holder && v.holder.node !== n) for (const old of v.holder.ids) m.abandoned.push({ node: v.holder.node, name, id: old });
  v.holder = { node: n, ids: [...(v.holder?.node === n ? v.holder.ids : []), id], mountpoint };
  v.written = back.count;
  return `ok ${mountpoint}, ${back.count} records`;
}

/** What an Unmount that answered means for the model. */
async function unmounted(m: Model, w: ChaosWorld, name: string, id: string, outcome: { ok: boolean; error?: string }): Promise<string> {
  const v = m.volumes.get(name)!;
  const holder = v.holder!;
  holder.ids = holder.ids.filter((x) => x !== id);
  if (holder.ids.length > 0) return outcome.ok ? 'ok, still referenced' : `failed: ${outcome.error}`;
  v.holder = undefined;
  if (!outcome.ok) return `failed: ${outcome.error}`;
  v.durable = v.written;
  const still = (await w.kernelMounts()).filter((k) => k.target === holder.mountpoint);
  if (still.length > 0) throw new Violation('an Unmount that succeeded leaves nothing mounted', `Unmount ${name} on ${label(holder.node)} answered ok, ${holder.mountpoint} is still mounted from ${still[0]!.source}`);
  return 'ok';
}

/** dockerd on a node that is back unmounts the tasks Swarm moved away meanwhile. */
async function reap(m: Model, w: ChaosWorld, n: number): Promise<string> {
  const mine = m.abandoned.filter((a) => a.node === n);
  m.abandoned = m.abandoned.filter((a) => a.node !== n);
  const results: string[] = [];
  for (const a of mine) {
    const out = await w.call(() => w.service(w.nodes[n]!).unmount(a.name, a.id), 1);
    results.push(`unmount ${a.name} ${a.id} ${out.ok ? 'ok' : `failed: ${out.error}`}`);
  }
  return results.length ? results.join('; ') : 'ok';
}

/** `docker volume create`. */
class Create extends VolumeStep {
  constructor(v: number, readonly n: number) {
    super(v);
  }
  text(name: string) {
    return `create ${name} on ${label(this.n)}`;
  }
  fits(m: Model) {
    return up(m, this.n);
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const out = await w.call(() => w.service(w.nodes[this.n]!).create(name, RELOCATABLE_OPTS), 3);
    if (out.ok && !m.volumes.has(name)) m.volumes.set(name, { life: randomUUID().slice(0, 8), written: 0, durable: 0 });
    return out.ok ? 'ok' : `failed: ${out.error}`;
  }
}

/**
 * A task starts on a node (`docker run -v NAME:/data`: dockerd creates a missing volume first): a
 * first Mount there, another reference, or a task rescheduled from a node that is down.
 */
class Mount extends VolumeStep {
  constructor(v: number, readonly n: number) {
    super(v);
  }
  text(name: string) {
    return `start a task with ${name} on ${label(this.n)}`;
  }
  fits(m: Model, name: string) {
    const v = m.volumes.get(name);
    return up(m, this.n) && (!v?.holder || v.holder.node === this.n || !up(m, v.holder.node));
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const service = w.service(w.nodes[this.n]!);
    let created = '';
    if (!m.volumes.has(name)) {
      const out = await w.call(() => service.create(name, RELOCATABLE_OPTS), 3);
      if (!out.ok) return `create failed: ${out.error}`;
      m.volumes.set(name, { life: randomUUID().slice(0, 8), written: 0, durable: 0 });
      created = 'created; ';
    }
    const id = `task-${++m.nextId}`;
    const out = await w.call(() => service.mount(name, id), 4);
    return created + (out.ok ? await mounted(m, w, name, this.n, id, out.value) : `mount failed: ${out.error}`);
  }
}

class Write extends VolumeStep {
  constructor(v: number, readonly records: number) {
    super(v);
  }
  text(name: string) {
    return `write ${this.records} records to ${name}`;
  }
  fits(m: Model, name: string) {
    const h = m.volumes.get(name)?.holder;
    return h !== undefined && h.ids.length > 0 && !m.nodes[h.node]!.frozen;
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const v = m.volumes.get(name)!;
    const h = v.holder!;
    if (!(await w.writable(name, w.nodes[h.node]!, h.mountpoint))) return `skipped: ${name} is no longer attached to ${label(h.node)} (I/O would fail)`;
    await appendRecords(h.mountpoint, v.life, v.written, this.records);
    v.written += this.records;
    return `ok on ${label(h.node)}, ${v.written} written, ${v.durable} durable`;
  }
}

/** A task stops: dockerd sends one Unmount and never repeats it. */
class Unmount extends VolumeStep {
  text(name: string) {
    return `stop a task of ${name}`;
  }
  fits(m: Model, name: string) {
    const h = m.volumes.get(name)?.holder;
    return h !== undefined && h.ids.length > 0 && up(m, h.node);
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const h = m.volumes.get(name)!.holder!;
    const id = h.ids[0]!;
    const out = await w.call(() => w.service(w.nodes[h.node]!).unmount(name, id), 1);
    return `unmount on ${label(h.node)}: ${await unmounted(m, w, name, id, out)}`;
  }
}

/** Swarm moves a task: the new node's Mount may come before the old node's Unmount, and waits for it. */
class Move extends VolumeStep {
  constructor(v: number, readonly n: number) {
    super(v);
  }
  text(name: string) {
    return `move the task of ${name} to ${label(this.n)}`;
  }
  fits(m: Model, name: string) {
    const h = m.volumes.get(name)?.holder;
    return h !== undefined && h.ids.length === 1 && h.node !== this.n && up(m, h.node) && up(m, this.n);
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const h = m.volumes.get(name)!.holder!;
    const oldId = h.ids[0]!;
    const id = `task-${++m.nextId}`;
    const mounting = w.call(() => w.service(w.nodes[this.n]!).mount(name, id), 4);
    await new Promise((r) => setTimeout(r, 200));
    const stopped = await w.call(() => w.service(w.nodes[h.node]!).unmount(name, oldId), 1);
    const unmount = await unmounted(m, w, name, oldId, stopped);
    const mount = await mounting;
    return `unmount on ${label(h.node)}: ${unmount}; mount: ${mount.ok ? await mounted(m, w, name, this.n, id, mount.value) : `failed: ${mount.error}`}`;
  }
}

/** `docker volume rm` on any node: refused while a task uses the volume, here or elsewhere. */
class Remove extends VolumeStep {
  constructor(v: number, readonly n: number) {
    super(v);
  }
  text(name: string) {
    return `remove ${name} on ${label(this.n)}`;
  }
  fits(m: Model, name: string) {
    return m.volumes.has(name) && up(m, this.n);
  }
  async on(m: Model, w: ChaosWorld, name: string) {
    const inUse = (await w.kernelMounts()).filter((k) => k.node && k.node.current && !k.node.frozen && k.target === m.volumes.get(name)!.holder?.mountpoint);
    const out = await w.call(() => w.service(w.nodes[this.n]!).remove(name), 3);
    if (out.ok && inUse.length > 0) throw new Violation('Remove refuses a volume in use', `Remove ${name} on ${label(this.n)} succeeded while ${inUse.map((k) => k.target).join(', ')} was mounted`);
    if (out.ok || ChaosWorld.named(await w.truth(), name).length === 0) {
      const v = m.volumes.get(name)!;
      if (v.holder) for (const id of v.holder.ids) m.abandoned.push({ node: v.holder.node, name, id });
      m.volumes.delete(name);
    }
    return out.ok ? 'ok' : `failed: ${out.error}`;
  }
}

class Kill extends Step {
  constructor(readonly n: number) {
    super();
  }
  toString() {
    return `kill -9 the plugin on ${label(this.n)}`;
  }
  ready(m: Model) {
    return up(m, this.n) && downCount(m) === 0;
  }
  async act(m: Model, w: ChaosWorld) {
    w.count('kill');
    w.kill(w.nodes[this.n]!);
    m.nodes[this.n]!.dead = true;
    return 'killed';
  }
}

class Restart extends Step {
  constructor(readonly n: number) {
    super();
  }
  toString() {
    return `start the plugin on ${label(this.n)} again`;
  }
  ready(m: Model) {
    return m.nodes[this.n]!.dead;
  }
  async act(m: Model, w: ChaosWorld) {
    await w.start(w.nodes[this.n]!);
    m.nodes[this.n]!.dead = false;
    return `started; ${await reap(m, w, this.n)}`;
  }
}

class Freeze extends Step {
  constructor(readonly n: number) {
    super();
  }
  toString() {
    return `instance of ${label(this.n)} unresponsive`;
  }
  ready(m: Model) {
    return up(m, this.n) && downCount(m) === 0;
  }
  async act(m: Model, w: ChaosWorld) {
    w.count('unresponsive');
    w.freeze(w.nodes[this.n]!);
    m.nodes[this.n]!.frozen = true;
    return 'hung';
  }
}

class Thaw extends Step {
  constructor(readonly n: number) {
    super();
  }
  toString() {
    return `instance of ${label(this.n)} responds again`;
  }
  ready(m: Model) {
    return m.nodes[this.n]!.frozen;
  }
  async act(m: Model, w: ChaosWorld) {
    w.thaw(w.nodes[this.n]!);
    m.nodes[this.n]!.frozen = false;
    return `back; ${await reap(m, w, this.n)}`;
  }
}

class CloudRestart extends Step {
  constructor(readonly pauseMs: number) {
    super();
  }
  toString() {
    return `restart localcloud (down ${this.pauseMs} ms)`;
  }
  ready() {
    return true;
  }
  async act(_m: Model, w: ChaosWorld) {
    w.count('cloud-restart');
    await w.bed.restartCloud(this.pauseMs);
    return 'restarted';
  }
}

const FAULTS: Record<'throttle' | '5xx' | 'stuck-attach' | 'slow-snapshot', (level: number) => Parameters<ChaosWorld['fault']>[1]> = {
  throttle: (level) => ({ throttleRate: 0.2 + 0.2 * level }),
  '5xx': (level) => ({ serverErrorRate: 0.05 + 0.05 * level }),
  'stuck-attach': () => ({ stuckAttach: 1 }),
  'slow-snapshot': (level) => ({ slowSnapshotMs: 1000 + 1000 * level }),
};

class CloudFault extends Step {
  constructor(readonly kind: keyof typeof FAULTS, readonly level: number, readonly steps: number) {
    super();
  }
  toString() {
    return `fault ${this.kind} ${JSON.stringify(FAULTS[this.kind](this.level))} for ${this.steps} steps`;
  }
  ready() {
    return true;
  }
  async act(_m: Model, w: ChaosWorld) {
    w.count(this.kind as FaultKind);
    // This step counts as one of the fault's steps, so +1 for the steps after it.
    w.fault(this.kind, FAULTS[this.kind](this.level), this.steps + 1);
    return 'set';
  }
}

class OperatorSnapshot extends VolumeStep {
  text(name: string) {
    return `stowage snapshot ${name}`;
  }
  fits(m: Model, name: string) {
    return m.volumes.has(name);
  }
  on(_m: Model, w: ChaosWorld, name: string) {
    return operatorCommand(w.bed.lc, ['snapshot', name]);
  }
}

class Gc extends Step {
  toString() {
    return 'stowage gc --apply';
  }
  ready() {
    return true;
  }
  async act(_m: Model, w: ChaosWorld) {
    const backups = await w.operatorSnapshots();
    const outcome = await operatorCommand(w.bed.lc, ['gc', '--apply']);
    const after = new Set(await w.operatorSnapshots());
    const deleted = backups.filter((id) => !after.has(id));
    if (deleted.length > 0) throw new Violation('operator snapshots are backups: retention and gc never delete them', `stowage gc --apply deleted ${deleted.join(', ')} (${outcome})`);
    return outcome;
  }
}

/** Weighted toward the data path; faults and kills are a step in six or so. */
export function commandArbitraries(): fc.Arbitrary<Cmd>[] {
  const v = fc.integer({ min: 0, max: NAMES.length - 1 });
  const n = fc.integer({ min: 0, max: 2 });
  return [
    fc.oneof(
      { weight: 1, arbitrary: fc.tuple(v, n).map(([a, b]) => new Create(a, b)) },
      { weight: 5, arbitrary: fc.tuple(v, n).map(([a, b]) => new Mount(a, b)) },
      { weight: 6, arbitrary: fc.tuple(v, fc.integer({ min: 1, max: 50 })).map(([a, b]) => new Write(a, b)) },
      { weight: 4, arbitrary: v.map((a) => new Unmount(a)) },
      { weight: 3, arbitrary: fc.tuple(v, n).map(([a, b]) => new Move(a, b)) },
      { weight: 1, arbitrary: fc.tuple(v, n).map(([a, b]) => new Remove(a, b)) },
      { weight: 1, arbitrary: n.map((a) => new Kill(a)) },
      { weight: 2, arbitrary: n.map((a) => new Restart(a)) },
      { weight: 1, arbitrary: n.map((a) => new Freeze(a)) },
      { weight: 2, arbitrary: n.map((a) => new Thaw(a)) },
      { weight: 1, arbitrary: fc.integer({ min: 200, max: 1500 }).map((ms) => new CloudRestart(ms)) },
      {
        weight: 2,
        arbitrary: fc
          .tuple(fc.constantFrom('throttle', '5xx', 'stuck-attach', 'slow-snapshot') as fc.Arbitrary<keyof typeof FAULTS>, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 1, max: 3 }))
          .map(([kind, level, steps]) => new CloudFault(kind, level, steps)),
      },
      { weight: 1, arbitrary: v.map((a) => new OperatorSnapshot(a)) },
      { weight: 1, arbitrary: fc.constant(new Gc()) },
    ),
  ];
}

/**
 * After a sequence: every node up, every task stopped, every name removed, the operator's
 * snapshots deleted; then nothing may be left behind.
 */
export async function cleanUp(m: Model, w: ChaosWorld): Promise<void> {
  w.calm();
  for (const [n, node] of m.nodes.entries()) {
    if (node.dead) await w.start(w.nodes[n]!);
    node.dead = node.frozen = false;
    await reap(m, w, n);
  }
  for (const [name, v] of m.volumes) {
    for (const id of v.holder?.ids ?? []) await w.call(() => w.service(w.nodes[v.holder!.node]!).unmount(name, id), 5);
  }
  // One Remove per name that succeeds, as `docker volume rm`: duplicates a Create left are orphans, not the operator's to find.
  for (const name of NAMES) {
    // A Remove right after a Create may not find the volume yet (EC2's Describe lags): the operator tries again.
    for (let attempt = 1; ChaosWorld.named(await w.truth(), name).length > 0; attempt++) {
      const out = await w.call(() => w.service(w.nodes[0]!).remove(name), 3);
      if (out.ok) break;
      if (attempt >= 10) throw new Violation('clean-up removes every volume', `Remove ${name} failed: ${out.error}`);
      w.trace[w.trace.length - 1] += `; Remove ${name} failed: ${out.error}`;
      await w.settle();
    }
  }
  await w.deleteOperatorSnapshots();
  const left = await w.orphans();
  const orphaned = Object.entries(left).filter(([, list]) => list.length > 0);
  if (orphaned.length > 0) throw new Violation('after clean-up nothing is orphaned', orphaned.map(([kind, list]) => `${kind}: ${list.join(', ')}`).join('; '));
}

