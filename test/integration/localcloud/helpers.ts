import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { EFSClient } from '@aws-sdk/client-efs';
import { startLocalcloud, type Localcloud, type LocalcloudOptions } from '../../../localcloud/index.js';

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };

export interface TestCloud {
  lc: Localcloud;
  ec2: EC2Client;
  efs: EFSClient;
  dir: string;
  /** stops the emulator (keeping the folder) and starts a new one on the same folder */
  restart(): Promise<void>;
  /** stops, releases loop devices and mounts, removes the folder */
  close(): Promise<void>;
}

function clients(lc: Localcloud) {
  const common = { endpoint: lc.url, region: lc.region, credentials, maxAttempts: 1 };
  return { ec2: new EC2Client(common), efs: new EFSClient(common) };
}

export async function startTestCloud(options: Omit<LocalcloudOptions, 'dir'> = {}): Promise<TestCloud> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-localcloud-test-'));
  const t = { dir } as TestCloud;
  const open = async () => {
    t.lc = await startLocalcloud({ dir, ...options });
    Object.assign(t, clients(t.lc));
  };
  await open();
  t.restart = async () => {
    await t.lc.stop({ release: false });
    await open();
  };
  t.close = async () => {
    t.ec2.destroy();
    t.efs.destroy();
    try {
      await t.lc.stop({ release: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  return t;
}

/** The AWS error code a call fails with; fails the test when the call succeeds. */
export async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { name: string }).name;
  }
  throw new Error('expected the call to fail');
}

export async function runInstance(t: TestCloud, zone: string, tags: Record<string, string> = {}): Promise<string> {
  const out = await t.ec2.send(
    new RunInstancesCommand({
      MinCount: 1,
      MaxCount: 1,
      ImageId: 'ami-12345678',
      Placement: { AvailabilityZone: zone },
      TagSpecifications: Object.keys(tags).length
        ? [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }]
        : undefined,
    }),
  );
  return out.Instances![0]!.InstanceId!;
}

/** Loop devices whose backing file lies under `dir` (the kernel shows canonical paths). */
export function loopsUnder(dir: string): string[] {
  return execFileSync('losetup', ['--list', '--noheadings', '--output', 'NAME,BACK-FILE'], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.includes(dir));
}

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}
