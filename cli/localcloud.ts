import { parseArgs } from 'node:util';
import { cleanLocalcloud, parseConsistency, parseFaults, startLocalcloud, type LatencyMode, type LocalcloudOptions } from '../localcloud/index.js';
import { FolderInUseError, lockFolder, type FolderLock } from './folder-lock.js';

const USAGE = `stowage localcloud — EC2 + EFS + IMDS emulator on real loop devices

Usage:
  stowage localcloud --dir DIR [--listen 127.0.0.1:PORT] [--region R] [--zones Z1,Z2,…] [--regions R1,R2,…]
                     [--latency zero|realistic] [--faults SPEC] [--consistency strict|eventual[=MS]]
  stowage localcloud --dir DIR --clean
  stowage localcloud --help

  --dir DIR         state, volume and snapshot files, device folders, EFS folders (created if missing)
  --listen H:P      address to listen on (default 127.0.0.1:0, any free port)
  --region R        region name (default us-east-1)
  --zones LIST      availability zones (default REGIONa,REGIONb,REGIONc)
  --regions LIST    several regions (disaster recovery), each with zones a,b,c; the first takes
                    --region's place; a request's SigV4 signing region picks its region
  --latency MODE    zero (default: transitions on the next call) or realistic (AWS timings)
  --faults SPEC     throttle=P, throttle.ACTION=P, 5xx=P, stuck-attach=true|N,
                    slow-snapshot=MS, unresponsive=INSTANCE-ID (repeatable), comma separated
  --consistency C   strict (default), or eventual[=MS][,seed=N]: each Describe may show the
                    state of up to MS ms ago (default 2000), drawn per call
  --clean           release every loop device and mount made from DIR, then exit

Prints one JSON line with the URL when ready; runs until SIGINT or SIGTERM. See docs/localcloud.md.
`;

function listenAddress(text: string): { host: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(text);
  if (!m || Number(m[2]) > 65535) throw new Error(`--listen ${text}: expected HOST:PORT`);
  return { host: m[1]!, port: Number(m[2]) };
}

const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;

/** --regions as given, each a region name, none twice; --region with it must be the first. */
function regionList(text: string | undefined, region: string | undefined): string[] | undefined {
  if (text === undefined) return undefined;
  const names = text.split(',').filter(Boolean);
  if (names.length === 0) throw new Error('--regions: expected region names such as us-east-1,us-west-2');
  const bad = names.find((n) => !REGION.test(n));
  if (bad !== undefined) throw new Error(`--regions ${text}: ${JSON.stringify(bad)} is not a region name such as us-west-2`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) throw new Error(`--regions ${text}: ${twice} is named twice`);
  if (region !== undefined && region !== names[0]) throw new Error(`--region ${region} and --regions ${text}: the first of --regions is the region; name it once`);
  return names;
}

export async function localcloudCommand(argv: string[]): Promise<number> {
  let values;
  try {
    values = parseArgs({
      args: argv,
      options: {
        dir: { type: 'string' },
        listen: { type: 'string', default: '127.0.0.1:0' },
        region: { type: 'string' },
        zones: { type: 'string' },
        regions: { type: 'string' },
        latency: { type: 'string', default: 'zero' },
        faults: { type: 'string', default: '' },
        consistency: { type: 'string', default: 'strict' },
        clean: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`stowage localcloud: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const fail = (msg: string) => {
    process.stderr.write(`stowage localcloud: ${msg}\n`);
    return 2;
  };
  if (!values.dir) return fail('--dir is required');
  // Every flag is checked before the folder is locked, so a usage error leaves no lock behind.
  if (values.latency !== 'zero' && values.latency !== 'realistic') return fail(`--latency ${values.latency}: expected zero or realistic`);
  let listen, faults, consistency, regions;
  try {
    regions = regionList(values.regions, values.region);
    listen = listenAddress(values.listen);
    faults = parseFaults(values.faults);
    consistency = parseConsistency(values.consistency);
  } catch (err) {
    return fail((err as Error).message);
  }
  // Before anything touches the folder: two emulators on one state would corrupt it.
  let lock: FolderLock;
  try {
    lock = await lockFolder(values.dir, 'stowage localcloud');
  } catch (err) {
    if (err instanceof FolderInUseError) {
      process.stderr.write(`stowage localcloud: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  try {
    if (values.clean) return await clean(values.dir);
    const zones = values.zones?.split(',').filter(Boolean);
    return await serve({ dir: values.dir, ...listen, region: values.region, zones, ...(regions && { regions }), latency: values.latency, faults, consistency });
  } finally {
    await lock.release();
  }
}

async function clean(dir: string): Promise<number> {
  await cleanLocalcloud(dir);
  process.stdout.write(JSON.stringify({ level: 'info', component: 'localcloud', msg: 'released loop devices and mounts', dir }) + '\n');
  return 0;
}

/** Runs the emulator until SIGINT or SIGTERM. */
async function serve(options: LocalcloudOptions & { latency: LatencyMode }): Promise<number> {
  const lc = await startLocalcloud(options);
  process.stdout.write(
    JSON.stringify({ level: 'info', component: 'localcloud', msg: 'localcloud ready', url: lc.url, dir: lc.dir, region: lc.region, zones: lc.zones, regions: lc.regions.map((r) => r.name), latency: options.latency }) + '\n',
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  // loop devices stay: attached volumes survive a restart of the emulator, as they would a restart of AWS's API
  await lc.stop({ release: false });
  process.stdout.write(JSON.stringify({ level: 'info', component: 'localcloud', msg: 'localcloud stopped', signal }) + '\n');
  return 0;
}
