import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { jest } from '@jest/globals';
import { DescribeAvailabilityZonesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { localcloudCommand } from '../../../cli/localcloud.js';

let dir: string;
let out: string[];
let err: string[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-localcloud-cli-'));
  out = [];
  err = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((s) => out.push(String(s)) > 0);
  jest.spyOn(process.stderr, 'write').mockImplementation((s) => err.push(String(s)) > 0);
});

afterEach(async () => {
  jest.restoreAllMocks();
  await localcloudCommand(['--dir', dir, '--clean']);
  await rm(dir, { recursive: true, force: true });
});

test('--help and bad flags', async () => {
  expect(await localcloudCommand(['--help'])).toBe(0);
  expect(out.join('')).toContain('--faults SPEC');
  expect(await localcloudCommand(['--listen', '127.0.0.1:1'])).toBe(2);
  expect(await localcloudCommand(['--dir', dir, '--latency', 'slow'])).toBe(2);
  expect(await localcloudCommand(['--dir', dir, '--faults', 'boom=1'])).toBe(2);
  expect(await localcloudCommand(['--dir', dir, '--consistency', 'often'])).toBe(2);
  expect(await localcloudCommand(['--dir', dir, '--listen', 'nowhere'])).toBe(2);
  expect(await localcloudCommand(['--bogus'])).toBe(2);
  expect(err.join('')).toMatch(/--dir is required[\s\S]*--latency slow[\s\S]*unknown fault boom[\s\S]*--consistency often: expected[\s\S]*--listen nowhere/);
  // Neither a usage error nor a finished --clean leaves the folder locked.
  expect(await localcloudCommand(['--dir', dir, '--clean'])).toBe(0);
  expect(await localcloudCommand(['--dir', dir, '--clean'])).toBe(0);
});

test('serves until SIGTERM, logging its URL as one JSON line', async () => {
  const running = localcloudCommand(['--dir', dir, '--zones', 'us-east-1a,us-east-1b', '--faults', 'stuck-attach=1', '--consistency', 'eventual=500,seed=3']);
  const ready = async (): Promise<{ url: string; zones: string[] }> => {
    for (;;) {
      const line = out.find((l) => l.includes('localcloud ready'));
      if (line) return JSON.parse(line);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const { url, zones } = await ready();
  expect(zones).toEqual(['us-east-1a', 'us-east-1b']);
  const ec2 = new EC2Client({ endpoint: url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
  try {
    expect((await ec2.send(new DescribeAvailabilityZonesCommand({}))).AvailabilityZones).toHaveLength(2);
    expect(await (await fetch(`${url}/_localcloud/faults`)).json()).toEqual({ stuckAttach: 1 });
    expect(await (await fetch(`${url}/_localcloud/consistency`)).json()).toEqual({ mode: 'eventual', maxLagMs: 500, seed: 3 });
  } finally {
    ec2.destroy();
    process.emit('SIGTERM');
  }
  expect(await running).toBe(0);
  expect(out.join('')).toContain('localcloud stopped');
});
