/**
 * Shared (EFS) volumes through real dockerds: one localcloud with two zones, two emulated
 * instances, each with its own plugin process and dockerd. Two containers on one node share a
 * volume, and a container on the other node (another zone) sees the same files at once.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { embeddedFileSystem } from '../../cli/embedded-efs.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { runInstance, startTestCloud, type TestCloud } from '../integration/localcloud/helpers.js';
import { importBusybox } from '../helpers/busybox-image.js';
import { eventually, type DockerNode } from '../helpers/docker-on-localcloud.js';
import { startDockerd } from '../helpers/dockerd.js';
import { removeTree, scratchDir } from '../helpers/owned-dir.js';
import { uniquePluginName } from '../helpers/plugin-name.js';
import { startPluginProcess } from '../helpers/plugin-process.js';
import { run } from '../helpers/run.js';

/** A node as docker-on-localcloud.ts has it, on a localcloud shared with the other node. */
type Node = Pick<DockerNode, 'zone' | 'plugin' | 'pluginName' | 'dockerd' | 'image' | 'mountRoot' | 'docker'>;

let cloud: TestCloud;
let tmp: string;
let fsId: string;
const nodes: Node[] = [];

async function startNode(label: string, zone: string): Promise<Node> {
  const node = { zone, mountRoot: path.join(tmp, label, 'mnt') } as Node;
  nodes.push(node);
  node.pluginName = await uniquePluginName();
  node.plugin = await startPluginProcess({
    STOWAGE_BACKEND: 'local',
    STOWAGE_LOCALCLOUD_URL: cloud.lc.url,
    STOWAGE_LOCALCLOUD_DIR: cloud.lc.dir,
    STOWAGE_INSTANCE_ID: await runInstance(cloud, zone),
    STOWAGE_AZ: zone,
    STOWAGE_SOCKET: node.pluginName.socket,
    STOWAGE_MOUNT_ROOT: node.mountRoot,
    STOWAGE_STATE_DIR: path.join(tmp, label, 'state'),
    STOWAGE_EFS_ID: fsId,
    STOWAGE_CLUSTER: 'e2e',
  });
  node.dockerd = await startDockerd({ name: `shared-${label}` });
  node.image = await importBusybox(node.dockerd);
  node.docker = async (args) => {
    const r = await node.dockerd.docker(args, { allowFailure: true });
    if (r.code !== 0) {
      throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n--- plugin ---\n${node.plugin.output().slice(-4000)}`);
    }
    return r.stdout;
  };
  return node;
}

async function mountedAt(node: Node, name: string): Promise<boolean> {
  const target = path.join(node.mountRoot, name);
  return (await readMountinfo()).some((m) => m.target === target);
}

beforeAll(async () => {
  cloud = await startTestCloud({ zones: ['us-east-1a', 'us-east-1b'] });
  tmp = await scratchDir('shared-volume');
  fsId = await embeddedFileSystem(cloud.efs, cloud.ec2, 'e2e');
  await startNode('a', 'us-east-1a');
  await startNode('b', 'us-east-1b');
});

afterAll(async () => {
  try {
    for (const node of nodes) {
      // dockerd first: removing its containers sends the last Unmounts to the plugin.
      await node.dockerd?.stop();
      await node.plugin?.stop();
      if (node.pluginName) await rm(node.pluginName.socket, { force: true });
    }
  } finally {
    for (const m of (await readMountinfo()).filter((m) => tmp && m.target.startsWith(`${tmp}/`)).reverse()) {
      await run('umount', ['-l', m.target], { allowFailure: true });
    }
    await cloud?.close();
    if (tmp) await removeTree(tmp);
  }
});

test('two containers on one node and one on a node in another zone share one volume', async () => {
  const [a, b] = nodes as [Node, Node];
  // backing=shared is the default (as Cloudstor); the options reach every node's Create.
  await a.docker(['volume', 'create', '-d', a.pluginName.name, '--opt', 'uid=1000', '--opt', 'gid=1000', '--opt', 'mode=0775', 'web']);
  const inspected = JSON.parse(await a.docker(['volume', 'inspect', 'web'])) as [{ Status: Record<string, unknown> }];
  expect(inspected[0].Status).toMatchObject({ fileSystemId: fsId, efsMode: 'directory', path: '/stowage/e2e/web', uid: 1000, gid: 1000, mode: '0775' });

  // A long-running writer and a reader at the same time on node a: one kernel mount, two references.
  await a.docker(['run', '-d', '--name', 'writer', '-v', 'web:/data', '--volume-driver', a.pluginName.name, a.image, 'sh', '-c', 'echo from-a > /data/hello; sleep 600']);
  await eventually(() => mountedAt(a, 'web'), 'the volume mounted on node a');
  expect(await a.docker(['run', '--rm', '-v', 'web:/data', a.image, 'cat', '/data/hello'])).toBe('from-a\n');
  expect(a.plugin.count('web', 'first reference taken; volume mounted')).toBe(1);
  expect(a.plugin.count('web', 'already mounted here; reference added')).toBe(1);

  // Node b, another zone: its dockerd creates the volume on its plugin (Get sees it cluster-wide).
  await b.docker(['volume', 'create', '-d', b.pluginName.name, 'web']);
  expect(await b.docker(['run', '--rm', '-v', 'web:/data', b.image, 'sh', '-c', 'cat /data/hello; echo from-b > /data/reply'])).toBe('from-a\n');
  expect(await a.docker(['exec', 'writer', 'cat', '/data/reply'])).toBe('from-b\n');
  await eventually(async () => !(await mountedAt(b, 'web')), 'node b to unmount after its container');

  await a.docker(['rm', '-f', 'writer']);
  await eventually(async () => !(await mountedAt(a, 'web')), 'node a to unmount after its last container');
  await a.docker(['volume', 'rm', 'web']);
  expect(a.plugin.lines().some((l) => l.volume === 'web' && /data is kept/.test(l.msg))).toBe(true);
});
