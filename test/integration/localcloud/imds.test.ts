import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { runInstance, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
let i1: string;
let i2: string;

beforeAll(async () => {
  t = await startTestCloud();
  i1 = await runInstance(t, 'us-east-1a');
  i2 = await runInstance(t, 'us-east-1c');
});
afterAll(async () => t?.close());

test('each instance has its own IMDSv2, reachable through AWS_EC2_METADATA_SERVICE_ENDPOINT', async () => {
  const saved = process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
  process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = t.lc.imdsEndpoint(i2);
  try {
    const md = new MetadataService({ retries: 0 });
    expect(await md.request('/latest/meta-data/instance-id', {})).toBe(i2);
    expect(await md.request('/latest/meta-data/placement/availability-zone', {})).toBe('us-east-1c');
    expect(await md.request('/latest/meta-data/placement/region', {})).toBe('us-east-1');
    const doc = JSON.parse(await md.request('/latest/dynamic/instance-identity/document', {}));
    expect(doc).toMatchObject({ instanceId: i2, availabilityZone: 'us-east-1c', region: 'us-east-1', accountId: '123456789012' });
    expect((await md.request('/latest/meta-data/', {})).split('\n')).toContain('placement/');
  } finally {
    if (saved === undefined) delete process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'];
    else process.env['AWS_EC2_METADATA_SERVICE_ENDPOINT'] = saved;
  }
  const other = new MetadataService({ endpoint: t.lc.imdsEndpoint(i1), retries: 0 });
  expect(await other.request('/latest/meta-data/instance-id', {})).toBe(i1);
});

test('IMDSv2 refuses reads without a token, and unknown instances are 404', async () => {
  expect((await fetch(`${t.lc.imdsEndpoint(i1)}/latest/meta-data/instance-id`)).status).toBe(401);
  const md = new MetadataService({ endpoint: t.lc.imdsEndpoint('i-00000000000000000'), retries: 0 });
  await expect(md.request('/latest/meta-data/instance-id', {})).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
});

test('an unresponsive instance does not answer', async () => {
  t.lc.setFaults({ unresponsiveInstances: [i1] });
  try {
    const md = new MetadataService({ endpoint: t.lc.imdsEndpoint(i1), retries: 0, httpOptions: { timeout: 300 } });
    await expect(md.request('/latest/meta-data/instance-id', {})).rejects.toThrow();
  } finally {
    t.lc.setFaults({});
  }
});
