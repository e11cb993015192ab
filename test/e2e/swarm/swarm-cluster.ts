/**
 * A Swarm of several nodes on this machine, each node a real dockerd with the Stowage plugin running
 * "on" its own emulated instance of one localcloud. The first node is the manager.
 *
 *   let swarm: Swarm;
 *   beforeAll(async () => { swarm = await startSwarm([{ name: 'n1', zone: 'a' }, …]); });
 *   afterAll(async () => { await swarm?.close(); });
 */
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { embeddedFileSystem } from '../../../cli/embedded-efs.js';
import { importBusybox } from '../../helpers/busybox-image.js';
import { abandonedDirs, makeOwnedDir, removeTree } from '../../helpers/owned-dir.js';
import { loopsUnder, runInstance, startTestCloud, type TestCloud } from '../../integration/localcloud/helpers.js';
import { startAwsCallLog, type AwsCallLog } from './aws-call-log.js';
import { linkNodes, removeCgroups } from './node-namespaces.js';
import { cgroupParent, startSwarmNode, type SwarmNode } from './swarm-node.js';

const PREFIX = 'stowage-swarm-';
const CLUSTER = 'swarm-e2e';

export interface NodeSpec {
  /** Short name; the node's hostname is `stowage-<name>`. */
  name: string;
  /** Zone letter: the node's instance runs in `<region><zone>` and the node carries the label az=<zone>. */
  zone: string;
}

export interface SwarmMember extends SwarmNode {
  readonly hostname: string;
  readonly instanceId: string;
  readonly zone: string;
}

export interface Swarm {
  cloud: TestCloud;
  calls: AwsCallLog;
  nodes: SwarmMember[];
  manager: SwarmMember;
  image: string;
  node(name: string): SwarmMember;
  /** Runs the docker CLI on a node; a failure throws with the CLI's stderr and the node's log tails. */
  docker(node: SwarmMember, args: string[]): Promise<string>;
  close(): Promise<void>;
}

export async function startSwarm(specs: NodeSpec[], pluginEnv: Record<string, string>): Promise<Swarm> {
  await sweepAbandonedRuns();
  const dir = await makeOwnedDir(PREFIX);
  const members: SwarmMember[] = [];
  let cloud: TestCloud | undefined;
  let calls: AwsCallLog | undefined;
  const close = async (): Promise<void> => {
    const problems: string[] = [];
    // Nodes first: their mounts go with their mount namespaces, before localcloud frees the loop devices.
    for (const m of members) await m.crash().catch((err: Error) => problems.push(`${m.name}: ${err.message}`));
    for (const m of members) await removeCgroups(cgroupParent(m.baseDir));
    await calls?.close();
    if (cloud) {
      await cloud.close().catch((err: Error) => problems.push(`localcloud: ${err.message}`));
      const loops = loopsUnder(cloud.dir);
      if (loops.length > 0) problems.push(`loop devices left: ${loops.join('; ')}`);
    }
    await removeTree(dir).catch((err: Error) => problems.push(err.message));
    if (problems.length > 0) throw new Error(`swarm tear-down incomplete: ${problems.join('; ')}`);
  };

  try {
    cloud = await startTestCloud({ latency: 'zero' });
    calls = startAwsCallLog(cloud.lc.url);
    // Shared volumes live on one EFS file system with a mount target in every zone, as in a real cluster.
    const efsId = await embeddedFileSystem(cloud.efs, cloud.ec2, CLUSTER);
    for (const spec of specs) {
      const zone = `${cloud.lc.region}${spec.zone}`;
      const instanceId = await runInstance(cloud, zone);
      const nodeDir = await makeOwnedDirIn(dir, spec.name);
      const node = await startSwarmNode({
        name: spec.name,
        dir: nodeDir,
        pluginEnv: {
          STOWAGE_BACKEND: 'local',
          STOWAGE_LOCALCLOUD_URL: await calls.urlFor(spec.name),
          STOWAGE_LOCALCLOUD_DIR: cloud.lc.dir,
          STOWAGE_INSTANCE_ID: instanceId,
          STOWAGE_AZ: zone,
          STOWAGE_DEFAULT_BACKING: 'relocatable',
          STOWAGE_CLUSTER: CLUSTER,
          STOWAGE_EFS_ID: efsId,
          ...pluginEnv,
        },
      });
      members.push(Object.assign(node, { hostname: `stowage-${spec.name}`, instanceId, zone }));
    }
    const swarm = formSwarm(members, cloud, calls, close);
    await joinAll(swarm, await linkNodes(members.map((m) => m.namespaces)), specs);
    swarm.image = (await Promise.all(members.map((m) => importBusybox(m))))[0]!;
    return swarm;
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

/** A node's folder inside the run's folder; its basename also names the node's cgroups, so it is unique. */
async function makeOwnedDirIn(runDir: string, name: string): Promise<string> {
  const nodeDir = path.join(runDir, `${path.basename(runDir)}-${name}`);
  await mkdir(nodeDir);
  return nodeDir;
}

/** A run killed before its afterAll: its processes died with it (parent-death signals); its cgroups and files stay. */
async function sweepAbandonedRuns(): Promise<void> {
  for (const dir of await abandonedDirs(PREFIX)) {
    const nodeDirs = (await readdir(dir).catch(() => [])).filter((e) => e.startsWith(`${path.basename(dir)}-`));
    for (const nodeDir of nodeDirs) await removeCgroups(nodeDir);
    await removeTree(dir).catch(() => undefined);
  }
}

function formSwarm(nodes: SwarmMember[], cloud: TestCloud, calls: AwsCallLog, close: () => Promise<void>): Swarm {
  const docker = async (node: SwarmMember, args: string[]): Promise<string> => {
    const r = await node.docker(args, { allowFailure: true, timeoutMs: 120_000 });
    if (r.code !== 0) {
      const plugin = node.pluginLog().slice(-15).map((l) => JSON.stringify(l)).join('\n');
      throw new Error(`docker ${args.join(' ')} on ${node.name} failed (${r.code}): ${r.stderr}\n--- plugin ---\n${plugin}\n--- dockerd ---\n${node.logs().slice(-3000)}`);
    }
    return r.stdout;
  };
  return {
    cloud,
    calls,
    nodes,
    manager: nodes[0]!,
    image: '',
    node: (name) => {
      const found = nodes.find((n) => n.name === name);
      if (!found) throw new Error(`no node ${name}`);
      return found;
    },
    docker,
    close,
  };
}

async function joinAll(swarm: Swarm, addresses: string[], specs: NodeSpec[]): Promise<void> {
  // dockerd puts a legacy plugin into its node description only after looking it up once; without
  // this the scheduler reports "missing plugin" for about 20 s.
  for (const node of swarm.nodes) await swarm.docker(node, ['volume', 'ls']);
  const [manager, ...workers] = swarm.nodes;
  await swarm.docker(manager!, ['swarm', 'init', '--advertise-addr', addresses[0]!]);
  const token = (await swarm.docker(manager!, ['swarm', 'join-token', '-q', 'worker'])).trim();
  for (const [i, worker] of workers.entries()) {
    await swarm.docker(worker, ['swarm', 'join', '--advertise-addr', addresses[i + 1]!, '--token', token, `${addresses[0]}:2377`]);
  }
  for (const [i, node] of swarm.nodes.entries()) {
    await swarm.docker(manager!, ['node', 'update', '--label-add', `az=${specs[i]!.zone}`, node.hostname]);
  }
}
