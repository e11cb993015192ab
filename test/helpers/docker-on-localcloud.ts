import { rm } from 'node:fs/promises';
import path from 'node:path';
import { readMountinfo } from '../../host/mountinfo.js';
import { runInstance, startTestCloud, type TestCloud } from '../integration/localcloud/helpers.js';
import { importBusybox } from './busybox-image.js';
import { startDockerd, type Dockerd } from './dockerd.js';
import { removeTree, scratchDir } from './owned-dir.js';
import { uniquePluginName, type PluginName } from './plugin-name.js';
import { startPluginProcess, type PluginProcess } from './plugin-process.js';
import { run } from './run.js';

/** One node as a user has it: a real dockerd, the plugin process, an emulated instance on localcloud. */
export interface DockerNode {
  cloud: TestCloud;
  instanceId: string;
  zone: string;
  plugin: PluginProcess;
  pluginName: PluginName;
  dockerd: Dockerd;
  image: string;
  mountRoot: string;
  /** Runs the docker CLI; a failure throws with the CLI's stderr and the tails of both logs. */
  docker(args: string[]): Promise<string>;
  close(): Promise<void>;
}

export async function startDockerNode(label: string, env: Record<string, string> = {}): Promise<DockerNode> {
  const cloud = await startTestCloud();
  const node = { cloud } as DockerNode;
  let tmp: string | undefined;
  node.close = async () => {
    // dockerd first: stopping it removes the containers, which sends the last Unmounts to the plugin.
    try {
      await node.dockerd?.stop();
      await node.plugin?.stop();
    } finally {
      if (node.pluginName) await rm(node.pluginName.socket, { force: true });
      // Whatever a failed test left mounted goes before the emulator releases the loop devices.
      for (const m of (await readMountinfo()).filter((m) => tmp && m.target.startsWith(tmp)).reverse()) {
        await run('umount', ['-l', m.target], { allowFailure: true });
      }
      await cloud.close();
      if (tmp) await removeTree(tmp);
    }
  };
  try {
    tmp = await scratchDir(`node-${label}`);
    node.zone = cloud.lc.zones[0]!;
    node.instanceId = await runInstance(cloud, node.zone);
    node.pluginName = await uniquePluginName();
    node.mountRoot = path.join(tmp, 'mnt');
    node.plugin = await startPluginProcess({
      STOWAGE_BACKEND: 'local',
      STOWAGE_LOCALCLOUD_URL: cloud.lc.url,
      STOWAGE_LOCALCLOUD_DIR: cloud.lc.dir,
      STOWAGE_INSTANCE_ID: node.instanceId,
      STOWAGE_AZ: node.zone,
      STOWAGE_SOCKET: node.pluginName.socket,
      STOWAGE_MOUNT_ROOT: node.mountRoot,
      STOWAGE_STATE_DIR: path.join(tmp, 'state'),
      STOWAGE_DEFAULT_BACKING: 'relocatable',
      ...env,
    });
    node.dockerd = await startDockerd({ name: label });
    node.image = await importBusybox(node.dockerd);
  } catch (err) {
    await node.close();
    throw err;
  }
  node.docker = async (args) => {
    const r = await node.dockerd.docker(args, { allowFailure: true });
    if (r.code !== 0) {
      throw new Error(
        `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n--- plugin ---\n${node.plugin.output().slice(-4000)}\n--- dockerd ---\n${node.dockerd.logs().slice(-3000)}`,
      );
    }
    return r.stdout;
  };
  return node;
}

/** dockerd sends Unmount while it tears a container down, which may finish after the CLI returns (later still on a loaded CI machine). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
