import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { EFSClient } from '@aws-sdk/client-efs';

// The SDK is pinned by the lock file to releases that support Node 20; its notice about later
// releases would land in dockerd's log at error level on every start, and in every CLI run. It is
// read when the first client is made, so here, before any.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export interface AwsClientOptions {
  region: string;
  /** localcloud, or a VPC endpoint; the SDK's default endpoint when absent. */
  endpointUrl?: string;
  /** Static credentials (localcloud); the SDK's default chain (instance role) when absent. */
  credentials?: EC2ClientConfig['credentials'];
}

export interface AwsClients {
  ec2: EC2Client;
  efs: EFSClient;
}

/**
 * One client per service for the whole plugin. `maxAttempts: 1` turns the SDK's own retries off:
 * callAws retries instead, bounded by each operation's deadline and counted.
 */
export function createAwsClients(options: AwsClientOptions): AwsClients {
  const config = {
    region: options.region,
    maxAttempts: 1,
    ...(options.endpointUrl !== undefined && { endpoint: options.endpointUrl }),
    ...(options.credentials !== undefined && { credentials: options.credentials }),
  };
  return { ec2: new EC2Client(config), efs: new EFSClient(config) };
}
