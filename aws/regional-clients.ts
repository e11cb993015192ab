import type { EC2Client } from '@aws-sdk/client-ec2';
import { createAwsClients, type AwsClientOptions } from './clients.js';

/**
 * EC2 clients of other regions (the DR region's), made on first use with the plugin's endpoint and
 * credentials and kept: one per region for the whole process, as for the home region.
 */
export class RegionalEc2 {
  private readonly clients = new Map<string, EC2Client>();

  constructor(private readonly options: Omit<AwsClientOptions, 'region'>) {}

  get(region: string): EC2Client {
    let client = this.clients.get(region);
    if (!client) {
      const made = createAwsClients({ ...this.options, region });
      made.efs.destroy();
      client = made.ec2;
      this.clients.set(region, client);
    }
    return client;
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
    this.clients.clear();
  }
}
