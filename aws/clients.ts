import { EC2Client, type EC2ClientConfig } from '@aws-sdk/client-ec2';
import { EFSClient } from '@aws-sdk/client-efs';

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
