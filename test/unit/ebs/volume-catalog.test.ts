import { CallCounter } from '../../../aws/call-counter.js';
import { silentLogger } from '../../../core/log.js';
import { VolumeCatalog } from '../../../drivers/ebs/volume-catalog.js';
import { FakeEc2 } from './fake-ec2.js';

const ZONE = 'us-east-1a';

// The memory of a volume this node made (so a Mount right after Create never answers "no such
// volume" while a Describe lags) must not wedge a Mount once that volume is gone.
describe('VolumeCatalog.lookup of a name this node created lately', () => {
  let ec2: FakeEc2;
  let clock: number;
  let catalog: VolumeCatalog;
  beforeEach(() => {
    ec2 = new FakeEc2();
    clock = Date.now();
    catalog = new VolumeCatalog({ ec2: ec2.client, counter: new CallCounter(), cluster: 'test', ttlMs: 60_000, now: () => clock });
  });
  afterEach(() => ec2.mock.restore());

  test('ours removed elsewhere and the name made again there: the new volume is found once EC2 shows it, not ours waited for', async () => {
    catalog.madeHere('db1', 'vol-0000000000000dead'); // removed by another node: EC2 no longer has it
    let made: string | undefined;
    setTimeout(() => (made = ec2.addVolume('db1', ZONE)), 200); // shown late, as a lagging Describe does
    const found = await catalog.lookup('db1', Date.now() + 60_000, silentLogger);
    expect(found?.id).toBe(made);
  });

  test('ours still unseen when its memory ends: "no such volume", not a wait to the deadline', async () => {
    catalog.madeHere('db1', 'vol-0000000000000dead');
    clock += 59_700; // the memory ends 300 ms from now
    const before = ec2.sequence().length;
    await expect(catalog.lookup('db1', Date.now() + 600_000, silentLogger)).resolves.toBeUndefined();
    // A few looks within those 300 ms (each backs off from 50 ms), not looks until the deadline.
    expect(ec2.sequence().length - before).toBeLessThan(20);
  });
});
