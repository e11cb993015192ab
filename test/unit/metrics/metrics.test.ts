import { CallCounter } from '../../../aws/call-counter.js';
import type { Driver } from '../../../drivers/driver.js';
import { silentLogger } from '../../../core/log.js';
import { Metrics } from '../../../plugin/metrics.js';

function fakeDriver(backing: 'relocatable' | 'shared', has: string[]): Driver {
  return {
    backing,
    mountpointOf: (name) => `/mnt/${name}`,
    create: async () => undefined,
    remove: async () => undefined,
    get: async (name) => (has.includes(name) ? { name, backing, status: {} } : undefined),
    list: async () => [],
    mount: async (name) => `/mnt/${name}`,
    isMounted: async () => true,
    unmount: async () => undefined,
  };
}

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values as { labels: Record<string, string>; value: number; metricName?: string }[] | undefined)?.find(
    (v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l) && (!v.metricName || v.metricName.endsWith('_count') || !name.includes('duration')),
  )?.value;
}

describe('metrics', () => {
  test('every recorded AWS call is counted by operation and outcome; attempts after the first are retries', async () => {
    const metrics = new Metrics();
    const counter = new CallCounter();
    const stop = metrics.watchCalls(counter);
    counter.record('AttachVolume', 'throttled', 1);
    counter.record('AttachVolume', 'error', 2);
    counter.record('AttachVolume', 'ok', 3);
    counter.record('DescribeVolumes', 'ok', 1);
    stop();
    counter.record('DescribeVolumes', 'ok', 1);
    expect(await value(metrics, 'stowage_aws_calls_total', { operation: 'AttachVolume', outcome: 'throttled' })).toBe(1);
    expect(await value(metrics, 'stowage_aws_calls_total', { operation: 'AttachVolume', outcome: 'ok' })).toBe(1);
    expect(await value(metrics, 'stowage_aws_calls_total', { operation: 'DescribeVolumes', outcome: 'ok' })).toBe(1);
    expect(await value(metrics, 'stowage_aws_retries_total', { operation: 'AttachVolume' })).toBe(2);
    expect(await value(metrics, 'stowage_aws_retries_total', { operation: 'DescribeVolumes' })).toBeUndefined();
  });

  test('a request is labelled with the backing whose driver had the volume, and its outcome', async () => {
    const metrics = new Metrics();
    const [ebs, efs] = [metrics.instrument(fakeDriver('relocatable', ['db1'])), metrics.instrument(fakeDriver('shared', ['web']))];
    // As VolumeService does: ask every driver, then mount on the one that has it.
    await metrics.trackRequest('/VolumeDriver.Mount', async () => {
      await Promise.all([ebs.get('db1', { deadline: 0, log: silentLogger }), efs.get('db1', { deadline: 0, log: silentLogger })]);
      return ebs.mount('db1', { deadline: 0, log: silentLogger });
    });
    await expect(metrics.trackRequest('/VolumeDriver.Mount', async () => {
      throw new Error('refused');
    })).rejects.toThrow('refused');
    const text = await metrics.registry.metrics();
    expect(text).toContain('stowage_request_duration_seconds_count{endpoint="/VolumeDriver.Mount",backing="relocatable",outcome="ok"} 1');
    expect(text).toContain('stowage_request_duration_seconds_count{endpoint="/VolumeDriver.Mount",backing="none",outcome="error"} 1');
    expect(text).toContain('stowage_mounts_in_flight{backing="relocatable"} 0');
  });

  test('moves by stage, attachments in flight (ended once however often), fences', async () => {
    const metrics = new Metrics();
    metrics.moveStage('snapshot', 42, 'ok');
    const end = metrics.attachStarted();
    metrics.attachStarted();
    end();
    end();
    metrics.fenced();
    const text = await metrics.registry.metrics();
    expect(text).toContain('stowage_move_stage_duration_seconds_count{stage="snapshot",outcome="ok"} 1');
    expect(text).toContain('stowage_move_stage_duration_seconds_sum{stage="snapshot",outcome="ok"} 42');
    expect(text).toContain('stowage_attachments_in_flight 1');
    expect(text).toContain('stowage_fences_total 1');
  });

  test('served on GET /metrics only', async () => {
    const metrics = new Metrics();
    const server = await metrics.listen({ host: '127.0.0.1', port: 0 });
    try {
      const ok = await fetch(server.url);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toContain('text/plain');
      expect(await ok.text()).toContain('# TYPE stowage_aws_calls_total counter');
      expect((await fetch(server.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await server.close();
    }
  });
});
