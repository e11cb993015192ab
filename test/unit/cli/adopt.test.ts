/** `stowage adopt` command lines that are refused before any AWS call, each naming what is wrong. */
import { EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { adoptCommand } from '../../../cli/ops/adopt.js';
import { runOps } from '../../helpers/run-ops.js';

const ec2 = mockClient(EC2Client);

async function adopt(argv: string[]) {
  const { code, stderr } = await runOps(adoptCommand, [...argv, '--region', 'us-east-1'], { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: 'c1' });
  return { code, firstLine: stderr.split('\n')[0] };
}

beforeEach(() => ec2.reset());

test.each([
  [['vol-0123456789abcdef0'], '--name NAME is required'],
  [['vol-1', '--name', 'db'], '"vol-1" is not an EBS volume id'],
  [['vol-0123456789abcdef0', '--name', 'db', '--fs', 'btrfs'], '--fs "btrfs": expected ext4 or xfs'],
  [['--from', 'portworx'], '--from "portworx": expected cloudstor or rexray'],
  [['--from', 'cloudstor', 'vol-0123456789abcdef0'], '--from adopts every volume that plugin tagged'],
  [['--from', 'cloudstor', '--rexray-tag', 'x'], '--rexray-tag goes with --from rexray'],
  [['vol-0123456789abcdef0', '--name', 'db', '--stack-id', 's'], '--stack-id and --rexray-tag go with --from'],
  [[], 'expected a VOLUME-ID (vol-…), or --from cloudstor|rexray'],
])('%j is refused: %s', async (argv, message) => {
  const out = await adopt(argv);
  expect(out.code).toBe(2);
  expect(out.firstLine).toContain(message);
  expect(ec2.calls()).toEqual([]);
});
