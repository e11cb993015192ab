/**
 * AWS calls per operation on localcloud, counted by the plugin's own CallCounter:
 * a same-zone Mount of a detached volume, Unmount, List over 1,000 volumes (cold and warm cache),
 * and 20 concurrent Mounts on one instance sharing their waits (realistic latencies there, so the
 * waits overlap as they do on AWS).
 */
import { CreateVolumeCommand } from '@aws-sdk/client-ec2';
import { volumeTags, volumeTagSpecification } from '../core/schema/ebs-volume.js';
import { parseOptions } from '../plugin/options/parse.js';
import { benchContext, CLUSTER, startBenchCloud, startBenchNode } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;
const LISTED = 1000;
const CONCURRENT = 20;

async function singleMount(): Promise<Record<string, number>> {
  const cloud = await startBenchCloud('zero');
  try {
    const node = await startBenchNode(cloud, cloud.lc.zones[0]!, 50);
    await node.driver.create('one', OPTIONS, benchContext('one'));
    const created = node.counter.count();
    node.counter.reset();
    await node.driver.mount('one', benchContext('one'));
    const mountCalls = node.counter.count();
    const mountDescribes = node.counter.count('DescribeVolumes');
    node.counter.reset();
    await node.driver.unmount('one', benchContext('one'));
    const unmountCalls = node.counter.count();
    node.counter.reset();
    await node.driver.remove('one', benchContext('one'));
    return { createCalls: created, mountCalls, mountDescribes, unmountCalls, removeCalls: node.counter.count() };
  } finally {
    await cloud.close();
  }
}

async function listing(): Promise<Record<string, number>> {
  const cloud = await startBenchCloud('zero');
  try {
    const zone = cloud.lc.zones[0]!;
    // Made straight through EC2, as other nodes would have made them: only the listing is measured.
    for (let i = 0; i < LISTED; i++) {
      const name = `listed-${i}`;
      await cloud.ec2.send(new CreateVolumeCommand({
        AvailabilityZone: zone, Size: 1, VolumeType: 'gp3',
        TagSpecifications: volumeTagSpecification(volumeTags(CLUSTER, name, 1, OPTIONS)),
      }));
    }
    const node = await startBenchNode(cloud, zone, 50);
    const cold = await node.driver.list(benchContext('-'));
    const coldDescribes = node.counter.count('DescribeVolumes');
    node.counter.reset();
    await node.driver.list(benchContext('-'));
    await node.driver.get('listed-7', benchContext('listed-7'));
    return { volumesListed: cold.length, coldListDescribes: coldDescribes, warmListAndGetDescribes: node.counter.count('DescribeVolumes') };
  } finally {
    await cloud.close();
  }
}

async function concurrentMounts() {
  const cloud = await startBenchCloud('realistic');
  try {
    const node = await startBenchNode(cloud, cloud.lc.zones[0]!, 1000);
    const names = Array.from({ length: CONCURRENT }, (_, i) => `c${i}`);
    await Promise.all(names.map((n) => node.driver.create(n, OPTIONS, benchContext(n))));
    node.counter.reset();
    const started = Date.now();
    await Promise.all(names.map((n) => node.driver.mount(n, benchContext(n))));
    const wallMs = Date.now() - started;
    const figures = {
      mounts: CONCURRENT,
      describeVolumes: node.counter.count('DescribeVolumes'),
      attachVolume: node.counter.count('AttachVolume'),
      totalCalls: node.counter.count(),
      wallMs,
      byOperation: Object.fromEntries(Object.entries(node.counter.snapshot()).map(([op, c]) => [op, c.ok + c.throttled + c.error])),
    };
    await Promise.all(names.map((n) => node.driver.unmount(n, benchContext(n))));
    return figures;
  } finally {
    await cloud.close();
  }
}

export async function main(): Promise<void> {
  const single = await singleMount();
  const list = await listing();
  const concurrent = await concurrentMounts();
  printTable('AWS calls per operation (localcloud)', [
    ['create (EC2 calls)', single.createCalls!],
    ['same-zone mount of a detached volume (EC2 calls)', single.mountCalls!, 'target <= 6'],
    ['unmount (EC2 calls)', single.unmountCalls!],
    ['remove (EC2 calls)', single.removeCalls!],
    [`list of ${list.volumesListed} volumes, cold (DescribeVolumes)`, list.coldListDescribes!, 'target <= 2'],
    ['list + get while the cache is fresh (DescribeVolumes)', list.warmListAndGetDescribes!, 'target 0'],
    [`${CONCURRENT} concurrent mounts, realistic latency (DescribeVolumes)`, concurrent.describeVolumes!, 'target <= 10'],
    [`${CONCURRENT} concurrent mounts (all EC2 calls)`, concurrent.totalCalls!],
    [`${CONCURRENT} concurrent mounts (wall ms)`, concurrent.wallMs!],
    ...Object.entries(concurrent.byOperation).map(([op, n]): [string, number] => [`  of which ${op}`, n]),
  ]);
  await recordResults('awsCalls', { single, list, concurrent });
}

runIfMain(import.meta.url, main);
