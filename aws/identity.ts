import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { ConfigError } from '../core/errors.js';

/** Who this node is in EC2: the instance the drivers attach to, and where it lives. */
export interface NodeIdentity {
  instanceId: string;
  zone: string;
  region: string;
}

export interface IdentitySources {
  /** STOWAGE_INSTANCE_ID + STOWAGE_AZ: both set, or neither (config.ts checks that). */
  instanceId?: string;
  az?: string;
  /** AWS_REGION; else derived from the zone. */
  region?: string;
  /** IMDS endpoint; the SDK reads AWS_EC2_METADATA_SERVICE_ENDPOINT (then the default) when absent. */
  imdsEndpoint?: string;
  imdsTimeoutMs?: number;
}

/** `us-east-1a` → `us-east-1` (a Local Zone such as `us-west-2-lax-1a` → `us-west-2`). */
export function regionOfZone(zone: string): string {
  const m = /^([a-z]{2}-[a-z]+-[0-9]+)/.exec(zone);
  if (!m) throw new ConfigError(`cannot tell the region of availability zone ${JSON.stringify(zone)}`);
  return m[1]!;
}

/**
 * The node identity from configuration when given, else from IMDSv2 (token first, as the SDK's
 * MetadataService does). Called once at start, after the socket listens.
 */
export async function resolveNodeIdentity(sources: IdentitySources): Promise<NodeIdentity> {
  if (sources.instanceId !== undefined && sources.az !== undefined) {
    return { instanceId: sources.instanceId, zone: sources.az, region: sources.region ?? regionOfZone(sources.az) };
  }
  const endpoint = sources.imdsEndpoint ?? process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT;
  const imds = new MetadataService({
    ...(endpoint !== undefined && { endpoint }),
    httpOptions: { timeout: sources.imdsTimeoutMs ?? 2000 },
    retries: 2,
    backoff: 0.2,
  });
  // The service joins the endpoint's path and ours verbatim: avoid a double slash after "host/".
  const base = endpoint !== undefined && new URL(endpoint).pathname.endsWith('/') ? 'latest/meta-data' : '/latest/meta-data';
  const read = async (item: string): Promise<string> => {
    try {
      return (await imds.request(`${base}/${item}`, {})).trim();
    } catch (err) {
      throw new ConfigError(
        `cannot read ${item} from the EC2 instance metadata service (${endpoint ?? 'default endpoint'}): ${(err as Error).message}; ` +
          'set STOWAGE_INSTANCE_ID and STOWAGE_AZ when not running on EC2',
        {},
      );
    }
  };
  const [instanceId, zone] = await Promise.all([read('instance-id'), read('placement/availability-zone')]);
  const region = sources.region ?? (await read('placement/region').catch(() => regionOfZone(zone)));
  return { instanceId, zone, region };
}
