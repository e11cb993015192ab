/**
 * `stowage modify --size` under realistic EC2 latencies: how long until the new size is usable
 * (the command returns at `optimizing`), and until the filesystem on the node holding the volume
 * has grown by itself (xfs, online, with a file open; the driver's default 30 s check). For ext4
 * grown while detached: what the offline grow adds to the next Mount. And what measuring the
 * filesystem's size costs every Mount (dumpe2fs, xfs_db).
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { runOpsCommand } from '../cli/ops/command.js';
import { modifyCommand } from '../cli/ops/modify.js';
import { createLinuxHost } from '../host/linux-host.js';
import { parseOptions } from '../plugin/options/parse.js';
import { benchContext, CLUSTER, startBenchCloud, startBenchNode, type BenchCloud, type BenchNode } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const GiB = 1024 ** 3;

async function modify(cloud: BenchCloud, name: string, size: number): Promise<void> {
  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const code = await runOpsCommand(modifyCommand, [name, '--size', String(size), '--endpoint', cloud.lc.url, '--region', cloud.lc.region], {
    stdout: quiet, stderr: quiet, signal: new AbortController().signal,
    env: { STOWAGE_CLUSTER: CLUSTER, STOWAGE_STATE_DIR: path.join(cloud.dir, 'no-state') },
  });
  if (code !== 0) throw new Error(`stowage modify ${name} exited ${code}`);
}

async function filesystemBytes(cloud: BenchCloud, node: BenchNode, name: string, fs: 'ext4' | 'xfs'): Promise<number> {
  const host = createLinuxHost({ deviceDir: cloud.lc.deviceDir(node.instanceId) });
  const mountpoint = path.join(node.mountRoot, name);
  return host.filesystemSize((await host.mountAt(mountpoint))!.source, fs, mountpoint);
}

export async function main(): Promise<void> {
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'bench', AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'bench' });
  const cloud = await startBenchCloud('realistic');
  try {
    const node = await startBenchNode(cloud, 'us-east-1a', 1000);
    node.driver.start();
    // xfs: modify while mounted with a file open, until the filesystem has grown online.
    const xfs = parseOptions({ backing: 'relocatable', size: '1', fs: 'xfs' }, 'relocatable').options;
    await node.driver.create('grow-xfs', xfs, benchContext('grow-xfs'));
    const mountpoint = await node.driver.mount('grow-xfs', benchContext('grow-xfs'));
    const file = await open(path.join(mountpoint, 'open.dat'), 'w');
    const started = Date.now();
    await modify(cloud, 'grow-xfs', 2);
    const usableMs = Date.now() - started;
    while ((await filesystemBytes(cloud, node, 'grow-xfs', 'xfs')) < 1.9 * GiB) await new Promise((r) => setTimeout(r, 200));
    const grownMs = Date.now() - started;
    await file.write(Buffer.alloc(1024 * 1024, 7));
    await file.close();
    await node.driver.unmount('grow-xfs', benchContext('grow-xfs'));

    // ext4 grown while detached: the next Mount grows it offline; against a Mount with nothing to grow.
    const ext4 = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;
    await node.driver.create('grow-ext4', ext4, benchContext('grow-ext4'));
    await node.driver.mount('grow-ext4', benchContext('grow-ext4'));
    await node.driver.unmount('grow-ext4', benchContext('grow-ext4'));
    let t = Date.now();
    await node.driver.mount('grow-ext4', benchContext('grow-ext4'));
    const plainMountMs = Date.now() - t;
    await node.driver.unmount('grow-ext4', benchContext('grow-ext4'));
    await modify(cloud, 'grow-ext4', 2);
    t = Date.now();
    await node.driver.mount('grow-ext4', benchContext('grow-ext4'));
    const growingMountMs = Date.now() - t;
    if ((await filesystemBytes(cloud, node, 'grow-ext4', 'ext4')) < 1.9 * GiB) throw new Error('ext4 did not grow at Mount');

    // What every Mount pays to record the filesystem's size.
    const host = createLinuxHost({ deviceDir: cloud.lc.deviceDir(node.instanceId) });
    const device = (await host.mountAt(path.join(node.mountRoot, 'grow-ext4')))!.source;
    t = Date.now();
    for (let i = 0; i < 10; i++) await host.filesystemSize(device, 'ext4');
    const measureMs = (Date.now() - t) / 10;
    await node.driver.unmount('grow-ext4', benchContext('grow-ext4'));
    await node.driver.stop();

    printTable('stowage modify --size 1 → 2 GiB (realistic latency)', [
      ['usable: modify returns at optimizing (ms)', usableMs],
      ['xfs grown online, file open (ms)', grownMs, 'modify + up to one 30 s check'],
      ['ext4 Mount, nothing to grow (ms)', plainMountMs],
      ['ext4 Mount that grows offline (ms)', growingMountMs, 'e2fsck -f + resize2fs'],
      ['size measurement per Mount, ext4 (ms)', measureMs.toFixed(1)],
    ]);
    await recordResults('modifyGrow', { usableMs, xfsGrownOnlineMs: grownMs, ext4PlainMountMs: plainMountMs, ext4GrowingMountMs: growingMountMs, sizeMeasureMs: measureMs });
  } finally {
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
