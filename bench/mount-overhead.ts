/**
 * The plugin's share of a Mount's wall time under realistic EC2 latencies: a same-zone Mount of a
 * detached, blank volume through the EBS driver, against the least a script can do for the same
 * result (AttachVolume, watch for the device every 20 ms, mkfs, mount) on the same emulator.
 */
import { AttachVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createLinuxHost } from '../host/linux-host.js';
import { parseOptions } from '../plugin/options/parse.js';
import { benchContext, startBenchCloud, startBenchNode, type BenchCloud, type BenchNode } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const ROUNDS = 8;
const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;

async function pluginMount(node: BenchNode, name: string): Promise<number> {
  await node.driver.create(name, OPTIONS, benchContext(name));
  const started = Date.now();
  await node.driver.mount(name, benchContext(name));
  const ms = Date.now() - started;
  await node.driver.unmount(name, benchContext(name));
  return ms;
}

async function attachmentState(cloud: BenchCloud, volumeId: string, state: string | undefined): Promise<void> {
  for (;;) {
    const v = await cloud.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
    if (v.Volumes?.[0]?.Attachments?.[0]?.State === state) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same work with nothing but the SDK and the host layer, polling as fast as is reasonable. */
async function scriptMount(cloud: BenchCloud, node: BenchNode, name: string): Promise<number> {
  await node.driver.create(name, OPTIONS, benchContext(name));
  const volumeId = (await node.driver.get(name, benchContext(name)))!.status.volumeId as string;
  const host = createLinuxHost({ deviceDir: cloud.lc.deviceDir(node.instanceId) });
  const target = path.join(cloud.dir, 'raw', name);
  await mkdir(target, { recursive: true });
  const started = Date.now();
  await cloud.ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: node.instanceId, Device: `/dev/xvdz${"abcdefghij"[Number(name.slice(1))]}` }));
  // As the plugin does: the attachment is done when its device appears.
  let device: string | undefined;
  while (!(device = await host.findDevice(volumeId))) await new Promise((r) => setTimeout(r, 20));
  await host.mkfs(device, 'ext4');
  await host.mount(device, target, 'ext4', []);
  const ms = Date.now() - started;
  await host.unmount(target);
  await cloud.ec2.send(new DetachVolumeCommand({ VolumeId: volumeId }));
  await attachmentState(cloud, volumeId, undefined);
  return ms;
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function main(): Promise<void> {
  const cloud = await startBenchCloud('realistic');
  try {
    const node = await startBenchNode(cloud, cloud.lc.zones[0]!, 1000);
    const plugin: number[] = [];
    const script: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      plugin.push(await pluginMount(node, `p${i}`));
      script.push(await scriptMount(cloud, node, `s${i}`));
    }
    const pluginMs = Math.round(mean(plugin));
    const scriptMs = Math.round(mean(script));
    const overheadMs = pluginMs - scriptMs;
    const budgetMs = Math.round(0.1 * pluginMs + 200);
    printTable(`Same-zone Mount under realistic latencies (mean of ${ROUNDS})`, [
      ['plugin Mount wall (ms)', pluginMs],
      ['minimal script, same work (ms)', scriptMs],
      ['plugin overhead (ms)', overheadMs, `target <= 10% + 200 ms = ${budgetMs}`],
    ]);
    await recordResults('mountOverhead', { rounds: ROUNDS, plugin, script, pluginMs, scriptMs, overheadMs, budgetMs });
  } finally {
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
