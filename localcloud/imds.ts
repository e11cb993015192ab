import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Cloud } from './cloud.js';
import type { Regions } from './regions.js';
import { ACCOUNT_ID, type Instance } from './state.js';

/**
 * IMDSv2 of every emulated instance, under `/imds/<instance-id>/latest/…`. The SDK's
 * MetadataService keeps the path of AWS_EC2_METADATA_SERVICE_ENDPOINT for metadata reads but asks
 * for its token at `/latest/api/token`, so tokens are served at both places and are valid for any
 * instance. An instance answers with its own region's placement, whichever region it runs in.
 */
export class Imds {
  private readonly tokens = new Map<string, number>();

  constructor(private readonly regions: Regions) {}

  static isImdsPath(method: string, path: string): boolean {
    return path.startsWith('/imds/') || (method === 'PUT' && path === '/latest/api/token');
  }

  handle(req: IncomingMessage, res: ServerResponse, path: string): void {
    const m = /^(?:\/imds\/([^/]+))?\/latest\/(.*)$/.exec(path);
    const send = (status: number, body: string, type = 'text/plain') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (!m) return send(404, 'Not Found');
    const [, instanceId, rest] = m;
    if (rest === 'api/token') {
      if (req.method !== 'PUT') return send(405, 'Method Not Allowed');
      const ttl = Number(req.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21600) return send(400, 'Bad Request');
      const token = randomUUID();
      this.tokens.set(token, Date.now() + ttl * 1000);
      res.setHeader('x-aws-ec2-metadata-token-ttl-seconds', String(ttl));
      return send(200, token);
    }
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expiry = typeof token === 'string' ? this.tokens.get(token) : undefined;
    if (expiry === undefined || expiry < Date.now()) return send(401, 'Unauthorized');
    const cloud = this.regions.ofInstance(instanceId ?? '');
    const instance = cloud?.state.instances.find((i) => i.id === instanceId);
    if (!cloud || !instance || instance.state === 'terminated') return send(404, 'Not Found');
    // a hung or powered-off instance does not answer: the caller's timeout decides; a booting one does
    const up = instance.state === 'running' || instance.state === 'pending';
    if (cloud.faults.unresponsive(instance.id) || !up) return;
    const value = this.metadata(cloud, instance)[rest!.replace(/\/$/, '') || '.'];
    if (value === undefined) return send(404, 'Not Found');
    return send(200, value, rest === 'dynamic/instance-identity/document' ? 'application/json' : 'text/plain');
  }

  private metadata(cloud: Cloud, i: Instance): Record<string, string> {
    const leaves: Record<string, string> = {
      'meta-data/ami-id': i.imageId,
      'meta-data/instance-id': i.id,
      'meta-data/instance-type': i.instanceType,
      'meta-data/local-ipv4': i.privateIp,
      'meta-data/local-hostname': `ip-${i.privateIp.replaceAll('.', '-')}.ec2.internal`,
      'meta-data/hostname': `ip-${i.privateIp.replaceAll('.', '-')}.ec2.internal`,
      'meta-data/placement/availability-zone': i.zone,
      'meta-data/placement/availability-zone-id': cloud.zoneId(i.zone),
      'meta-data/placement/region': cloud.region,
      'dynamic/instance-identity/document': JSON.stringify(
        {
          accountId: ACCOUNT_ID,
          architecture: 'x86_64',
          availabilityZone: i.zone,
          imageId: i.imageId,
          instanceId: i.id,
          instanceType: i.instanceType,
          pendingTime: i.launchTime,
          privateIp: i.privateIp,
          region: cloud.region,
          version: '2017-09-30',
        },
        null,
        2,
      ),
    };
    // directory listings, as IMDS answers a path ending in a folder: children, folders with a slash
    const listing: Record<string, Set<string>> = {};
    for (const path of Object.keys(leaves)) {
      const parts = path.split('/');
      for (let n = 0; n < parts.length; n++) {
        const folder = n === 0 ? '.' : parts.slice(0, n).join('/');
        (listing[folder] ??= new Set()).add(n === parts.length - 1 ? parts[n]! : `${parts[n]}/`);
      }
    }
    return { ...Object.fromEntries(Object.entries(listing).map(([k, v]) => [k, [...v].join('\n')])), ...leaves };
  }
}
