import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { regionOfZone, resolveNodeIdentity } from '../../../aws/identity.js';
import { ConfigError } from '../../../core/errors.js';

describe('node identity', () => {
  test('STOWAGE_INSTANCE_ID + STOWAGE_AZ win over IMDS; the region follows the zone', async () => {
    await expect(resolveNodeIdentity({ instanceId: 'i-0123456789abcdef0', az: 'eu-west-3b' })).resolves.toEqual({
      instanceId: 'i-0123456789abcdef0',
      zone: 'eu-west-3b',
      region: 'eu-west-3',
    });
  });

  test('regions of zones, Local Zones included', () => {
    expect(regionOfZone('us-east-1a')).toBe('us-east-1');
    expect(regionOfZone('us-west-2-lax-1a')).toBe('us-west-2');
  });

  describe('from IMDSv2', () => {
    let server: http.Server;
    let endpoint: string;
    const seen: string[] = [];

    beforeAll(async () => {
      server = http.createServer((req, res) => {
        seen.push(`${req.method} ${req.url} ${req.headers['x-aws-ec2-metadata-token'] ?? ''}`.trim());
        if (req.method === 'PUT' && req.url === '/latest/api/token') return res.end('tok-1');
        if (req.headers['x-aws-ec2-metadata-token'] !== 'tok-1') return res.writeHead(401).end();
        const answers: Record<string, string> = {
          '/latest/meta-data/instance-id': 'i-0fedcba9876543210',
          '/latest/meta-data/placement/availability-zone': 'ap-south-1c',
          '/latest/meta-data/placement/region': 'ap-south-1',
        };
        const answer = answers[req.url ?? ''];
        if (answer === undefined) return res.writeHead(404).end();
        res.end(answer);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    test('reads instance id, zone and region with a session token', async () => {
      await expect(resolveNodeIdentity({ imdsEndpoint: endpoint })).resolves.toEqual({
        instanceId: 'i-0fedcba9876543210',
        zone: 'ap-south-1c',
        region: 'ap-south-1',
      });
      expect(seen).toContain('GET /latest/meta-data/instance-id tok-1');
    });

    test('honours AWS_EC2_METADATA_SERVICE_ENDPOINT', async () => {
      process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT = `${endpoint}/`;
      try {
        await expect(resolveNodeIdentity({})).resolves.toMatchObject({ instanceId: 'i-0fedcba9876543210' });
      } finally {
        delete process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
      }
    });

    test('no IMDS: a ConfigError that says what to set', async () => {
      const err = await resolveNodeIdentity({ imdsEndpoint: 'http://127.0.0.1:1', imdsTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/cannot read instance-id .*set STOWAGE_INSTANCE_ID and STOWAGE_AZ/);
    });
  });
});
