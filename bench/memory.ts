/**
 * The plugin's resident memory, as the kernel counts it (VmRSS in /proc/<pid>/status): a real
 * `stowage plugin` process on localcloud, idle after start, then after listing a cluster of 1,000
 * relocatable volumes made through EC2 with the plugin's tags (as other nodes would have made them).
 */
import { CreateVolumeCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { volumeTags, volumeTagSpecification } from '../core/schema/ebs-volume.js';
import { parseOptions } from '../plugin/options/parse.js';
import { CLUSTER, startBenchCloud, type BenchCloud } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const VOLUMES = 1000;
const LISTS = 5;
/** Volumes created at once: EC2's CreateVolume bucket refills at 5 per second, localcloud has none. */
const CREATE_BATCH = 25;
const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;
/** The bundle that `npm start` and the managed plugin run (scripts/bundle.mjs). */
const PLUGIN_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../stowage.mjs');

async function makeVolumes(cloud: BenchCloud, zone: string): Promise<void> {
  for (let first = 0; first < VOLUMES; first += CREATE_BATCH) {
    await Promise.all(
      Array.from({ length: Math.min(CREATE_BATCH, VOLUMES - first) }, (_, k) => {
        const name = `mem-${first + k}`;
        return cloud.ec2.send(new CreateVolumeCommand({
          AvailabilityZone: zone, Size: 1, VolumeType: 'gp3', TagSpecifications: volumeTagSpecification(volumeTags(CLUSTER, name, 1, OPTIONS)),
        }));
      }),
    );
  }
}

function post(socketPath: string, route: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: route, method: 'POST' }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

/** VmRSS and VmHWM (the peak) of a process, in MiB. */
async function residentMiB(pid: number): Promise<{ rss: number; peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: Math.round(kib('VmRSS') / 1024), peak: Math.round(kib('VmHWM') / 1024) };
}

/** RSS of a bare Node and of one that only loaded the EC2 client: where the plugin's floor comes from. */
async function baselineMiB(script: string): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', `${script}; console.log(process.memoryUsage().rss)`]);
  return Math.round(Number(stdout.trim()) / 1048576);
}

const settle = () => new Promise((r) => setTimeout(r, 2000));

export async function main(): Promise<void> {
  const cloud = await startBenchCloud('zero');
  const socket = path.join(cloud.dir, 'plugin.sock');
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const zone = cloud.lc.zones[0]!;
    const run = await cloud.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-bench', Placement: { AvailabilityZone: zone } }));
    await makeVolumes(cloud, zone);
    child = spawn(process.execPath, [PLUGIN_MAIN, 'plugin', '--dev'], {
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        STOWAGE_BACKEND: 'local', STOWAGE_LOCALCLOUD_URL: cloud.lc.url, STOWAGE_LOCALCLOUD_DIR: cloud.lc.dir,
        STOWAGE_INSTANCE_ID: run.Instances![0]!.InstanceId!, STOWAGE_AZ: zone, STOWAGE_CLUSTER: CLUSTER,
        STOWAGE_SOCKET: socket, STOWAGE_MOUNT_ROOT: path.join(cloud.dir, 'mnt'), STOWAGE_STATE_DIR: path.join(cloud.dir, 'state'),
        STOWAGE_DEFAULT_BACKING: 'relocatable',
      },
      stdio: 'ignore',
    });
    const deadline = Date.now() + 15_000;
    while ((await post(socket, '/VolumeDriver.Capabilities').catch(() => ({ status: 0 }))).status !== 200) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error('the plugin did not open its socket');
      await new Promise((r) => setTimeout(r, 100));
    }
    await settle();
    const idle = await residentMiB(child.pid!);
    let listed = 0;
    for (let i = 0; i < LISTS; i++) {
      const reply = await post(socket, '/VolumeDriver.List');
      if (reply.status !== 200) throw new Error(`List failed: ${reply.body}`);
      listed = (JSON.parse(reply.body) as { Volumes: unknown[] }).Volumes.length;
    }
    await settle();
    const afterList = await residentMiB(child.pid!);
    const bareNodeMiB = await baselineMiB('');
    const ec2ClientMiB = await baselineMiB("await import('@aws-sdk/client-ec2')");
    printTable(`Plugin resident memory (VmRSS of a real plugin process, MiB)`, [
      ['idle, after start', idle.rss, 'target <= 100'],
      [`after ${LISTS} Lists of ${listed} volumes`, afterList.rss, 'target <= 100'],
      ['peak (VmHWM)', afterList.peak],
      ['for scale: bare node', bareNodeMiB],
      ['for scale: node that imported @aws-sdk/client-ec2', ec2ClientMiB],
    ]);
    await recordResults('memory', { volumes: listed, lists: LISTS, idleMiB: idle.rss, afterListMiB: afterList.rss, peakMiB: afterList.peak, bareNodeMiB, ec2ClientMiB });
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      const force = setTimeout(() => child!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(force);
    }
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
