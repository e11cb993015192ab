/**
 * Fault cells that need the plugin as its own process: kill -9 in the middle of a Mount and of an
 * Unmount, and localcloud restarting under a Mount in flight. Two plugin processes on two instances
 * of one zone, driven over their sockets as dockerd drives them; each cell runs the full cycle and
 * ends with the orphan census.
 */
import path from 'node:path';
import { delay } from '../../core/delay.js';
import { startPluginProcess, type PluginProcess } from '../helpers/plugin-process.js';
import { post } from '../unit/plugin/socket-client.js';
import { CLUSTER, ZONE_A, readData, startFaultBed, until, writeData, type FaultBed } from './fault-bed.js';

import { asRoot } from '../helpers/as-root.js';
const NOTHING_LEFT = { volumes: [], snapshots: [], attachments: [], loopDevices: [], mounts: [] };

interface PluginNode {
  label: string;
  socket: string;
  plugin: PluginProcess;
}

/** What dockerd and Swarm see: Err texts, and connections lost to a crash. */
class ProtocolCaller {
  readonly seen: string[] = [];

  /** POSTs until a 200; an Err marked [retryable] is met with another call, as Swarm restarts the task. */
  async call(node: PluginNode, route: string, body: Record<string, unknown>, attempts = 20): Promise<Record<string, unknown>> {
    for (let attempt = 1; ; attempt++) {
      const reply = await post(node.socket, route, JSON.stringify(body));
      const json = JSON.parse(reply.body) as Record<string, unknown>;
      if (reply.status === 200) return json;
      const err = String(json.Err);
      this.seen.push(err);
      if (!err.endsWith('[retryable]') || attempt >= attempts) throw new Error(`${route} on ${node.label}: ${err}`);
      await delay(500);
    }
  }

  /** A request the plugin dies under: the caller sees the connection go. */
  async lost(node: PluginNode, route: string, body: Record<string, unknown>): Promise<void> {
    await expect(post(node.socket, route, JSON.stringify(body))).rejects.toThrow();
    this.seen.push(`${route}: connection lost`);
  }
}

asRoot('fault matrix: the plugin process killed mid-operation, localcloud restarted mid-operation', () => {
  let bed: FaultBed;
  const nodes: PluginNode[] = [];

  /**
   * Holds the request at `operation` (EC2 throttles it without end), kills the plugin there with
   * -9 once it is retrying, lifts the fault and starts the plugin again.
   */
  async function crashDuring(caller: ProtocolCaller, node: PluginNode, route: string, body: Record<string, unknown>, operation: string): Promise<void> {
    bed.faults({ throttleRate: { [operation]: 1 } });
    const dying = caller.lost(node, route, body);
    await until(`${node.label} retrying ${operation}`, async () => node.plugin.lines().some((l) => l.msg === 'AWS call failed, retrying' && l.operation === operation));
    await node.plugin.crash();
    await dying;
    bed.faults({});
    await node.plugin.restart();
  }

  beforeAll(async () => {
    bed = await startFaultBed('crash');
    for (const label of ['p1', 'p2']) {
      const instanceId = await bed.startInstance(ZONE_A);
      const socket = path.join(bed.dir, `${label}.sock`);
      const plugin = await startPluginProcess({
        STOWAGE_BACKEND: 'local', STOWAGE_LOCALCLOUD_URL: bed.lc.url, STOWAGE_LOCALCLOUD_DIR: bed.lc.dir,
        STOWAGE_INSTANCE_ID: instanceId, STOWAGE_AZ: ZONE_A, STOWAGE_CLUSTER: CLUSTER, STOWAGE_SOCKET: socket,
        STOWAGE_MOUNT_ROOT: path.join(bed.dir, `mnt-${label}`), STOWAGE_STATE_DIR: path.join(bed.dir, `state-${label}`),
        STOWAGE_DEFAULT_BACKING: 'relocatable', STOWAGE_MOUNT_TIMEOUT: '10s',
      });
      nodes.push({ label, socket, plugin });
    }
  });
  afterAll(async () => {
    for (const node of nodes) await node.plugin.stop();
    await bed?.close();
  });
  afterEach(async () => {
    bed.faults({});
    await bed.sweep();
  });

  /** The second half of every cell: mount on p2, read every byte, unmount, remove, nothing left. */
  async function finishOnSecondNode(caller: ProtocolCaller, name: string, data: Buffer, mountAttempts = 20): Promise<void> {
    const [, p2] = nodes as [PluginNode, PluginNode];
    const { Mountpoint } = await caller.call(p2, '/VolumeDriver.Mount', { Name: name, ID: 'task-2' }, mountAttempts);
    expect((await readData(String(Mountpoint))).equals(data)).toBe(true);
    await caller.call(p2, '/VolumeDriver.Unmount', { Name: name, ID: 'task-2' });
    await caller.call(p2, '/VolumeDriver.Remove', { Name: name });
    expect(await bed.orphans()).toEqual(NOTHING_LEFT);
  }

  test('kill -9 while a Mount is attaching: after a restart the next Mount succeeds and nothing is left', async () => {
    const [p1] = nodes as [PluginNode];
    const caller = new ProtocolCaller();
    await caller.call(p1, '/VolumeDriver.Create', { Name: 'crash-mount', Opts: {} });
    await crashDuring(caller, p1, '/VolumeDriver.Mount', { Name: 'crash-mount', ID: 'task-1' }, 'AttachVolume');
    const { Mountpoint } = await caller.call(p1, '/VolumeDriver.Mount', { Name: 'crash-mount', ID: 'task-1b' });
    const data = await writeData(String(Mountpoint));
    await caller.call(p1, '/VolumeDriver.Unmount', { Name: 'crash-mount', ID: 'task-1b' });
    await finishOnSecondNode(caller, 'crash-mount', data);
    expect(caller.seen.filter((e) => !e.endsWith('connection lost')).every((e) => e.endsWith('[retryable]'))).toBe(true);
  });

  /**
   * dockerd does not repeat an Unmount: the restarted plugin itself detaches what a crash left
   * attached and mounted nowhere, or its fresh heartbeat would keep the other node out for good.
   */
  test('kill -9 while an Unmount is detaching: after a restart the other node gets the volume', async () => {
    const [p1] = nodes as [PluginNode];
    const caller = new ProtocolCaller();
    await caller.call(p1, '/VolumeDriver.Create', { Name: 'crash-unmount', Opts: {} });
    const { Mountpoint } = await caller.call(p1, '/VolumeDriver.Mount', { Name: 'crash-unmount', ID: 'task-1' });
    const data = await writeData(String(Mountpoint));
    await crashDuring(caller, p1, '/VolumeDriver.Unmount', { Name: 'crash-unmount', ID: 'task-1' }, 'DetachVolume');
    // Three Mounts of 10 s each: long past the moment a detach would have been seen.
    await finishOnSecondNode(caller, 'crash-unmount', data, 3);
  });

  test('localcloud restarts while a Mount is in flight: the Mount rides it out', async () => {
    const [p1, p2] = nodes as [PluginNode, PluginNode];
    const caller = new ProtocolCaller();
    await caller.call(p1, '/VolumeDriver.Create', { Name: 'cloud-restart', Opts: {} });
    const { Mountpoint } = await caller.call(p1, '/VolumeDriver.Mount', { Name: 'cloud-restart', ID: 'task-1' });
    const data = await writeData(String(Mountpoint));
    await caller.call(p1, '/VolumeDriver.Unmount', { Name: 'cloud-restart', ID: 'task-1' });
    const mounting = caller.call(p2, '/VolumeDriver.Mount', { Name: 'cloud-restart', ID: 'task-2' });
    await bed.restartCloud(1500);
    const second = await mounting;
    // It did meet the outage: p2 retried on a refused or reset connection.
    expect(p2.plugin.lines().some((l) => l.msg === 'AWS call failed, retrying' && /^ECONN/.test(String(l.code)))).toBe(true);
    expect((await readData(String(second.Mountpoint))).equals(data)).toBe(true);
    await caller.call(p2, '/VolumeDriver.Unmount', { Name: 'cloud-restart', ID: 'task-2' });
    await caller.call(p2, '/VolumeDriver.Remove', { Name: 'cloud-restart' });
    expect(await bed.orphans()).toEqual(NOTHING_LEFT);
    expect(caller.seen.every((e) => e.endsWith('[retryable]'))).toBe(true);
  });
});
