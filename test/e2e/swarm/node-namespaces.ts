/**
 * The namespaces one Swarm node lives in. An "anchor" process holds a private network, mount and UTS
 * namespace; in its mount namespace a per-node folder covers /etc/docker (dockerd's key and
 * settings) and another covers /run/docker/plugins (so the node's dockerd finds only its own
 * plugin socket). The node's dockerd and plugin are started inside with nsenter. Nothing here is
 * visible from the host's namespaces, and everything goes when the node's processes are killed.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readlink, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Not helpers/run.ts: it writes to the child's stdin, and a command as quick as `ip` or `find` may
 * be gone by then (EPIPE, an uncaught error that fails the whole file). execFile leaves stdin alone
 * and its error carries the command line and stderr.
 */
const execFileAsync = promisify(execFile);

const UNSHARE = '/usr/bin/unshare';
const NSENTER = '/usr/bin/nsenter';
const SETPRIV = '/usr/bin/setpriv';
const IP = '/usr/sbin/ip';
const FIND = '/usr/bin/find';
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Folders the anchor covers, each with a folder of the node's own. */
const PRIVATE_FOLDERS = { etc: '/etc/docker', plugins: '/run/docker/plugins' } as const;

export interface NodeNamespaces {
  readonly anchorPid: number;
  /** The node's own folder standing in for /run/docker/plugins (the host path of the plugin socket's folder). */
  readonly pluginsDir: string;
  /**
   * argv that runs `argv` inside the node (mount + UTS, and the network namespace when `net`), with
   * a parent-death signal so a crashed test run takes it along.
   */
  command(argv: string[], opts: { net: boolean; deathSignal: 'KILL' | 'TERM' }): string[];
  /** Runs `ip` in the node's network namespace. */
  ip(args: string[]): Promise<void>;
  /** SIGKILL to every process of the node (its namespaces and their descendants), as at a power loss. Idempotent. */
  kill(): Promise<void>;
}

export async function startNodeNamespaces(dir: string, hostname: string): Promise<NodeNamespaces> {
  for (const host of Object.values(PRIVATE_FOLDERS)) {
    await readdir(host).catch(() => {
      throw new Error(`${host} is missing: the swarm e2e test covers it per node and needs it to exist (create it, or install docker.io)`);
    });
  }
  const own = { etc: path.join(dir, 'etc-docker'), plugins: path.join(dir, 'plugins') };
  await mkdir(own.etc, { recursive: true });
  await mkdir(own.plugins, { recursive: true });
  const script = [
    `mount --bind ${own.etc} ${PRIVATE_FOLDERS.etc}`,
    `mount --bind ${own.plugins} ${PRIVATE_FOLDERS.plugins}`,
    `hostname ${hostname}`,
    'echo ready',
    'exec sleep infinity',
  ].join(' && ');
  const anchor = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', UNSHARE, '--net', '--mount', '--uts', '--propagation', 'private', 'sh', '-c', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await anchorReady(anchor);
  const anchorPid = anchor.pid!;
  // Read once: the node's processes are found by namespace even after the anchor itself is gone.
  const [mnt, net] = [await nsId(anchorPid, 'mnt'), await nsId(anchorPid, 'net')];
  if (!mnt || !net) throw new Error(`node namespace anchor ${anchorPid} vanished`);
  // Held open until the node is killed: the kernel reuses a dead namespace's number, and a later
  // look for "processes in this namespace" must never find another node's (or another run's).
  const held = [openSync(`/proc/${anchorPid}/ns/mnt`, 'r'), openSync(`/proc/${anchorPid}/ns/net`, 'r')];
  const namespaces: Namespaces = { mnt, net };
  const nsArgs = (net: boolean) => ['-t', String(anchorPid), '-m', '-u', ...(net ? ['-n'] : [])];

  return {
    anchorPid,
    pluginsDir: own.plugins,
    command: (argv, { net, deathSignal }) => [NSENTER, ...nsArgs(net), '--', SETPRIV, '--pdeathsig', deathSignal, '--', ...argv],
    ip: async (args) => {
      await execFileAsync(NSENTER, ['-t', String(anchorPid), '-n', '--', IP, ...args]);
    },
    kill: async () => {
      // Once the references are let go, the namespace numbers may belong to someone else.
      if (held.length === 0) return;
      await killNode(namespaces);
      // Last reference gone: the namespaces end, and with them the veths and the node's mounts.
      for (const fd of held.splice(0)) closeSync(fd);
    },
  };
}

function anchorReady(anchor: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let err = '';
    anchor.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    anchor.stdout!.once('data', () => resolve());
    anchor.once('exit', (code) => reject(new Error(`node namespace anchor exited (${code}): ${err.trim()}`)));
    anchor.once('error', reject);
  });
}

/**
 * Joins the nodes on one layer-2 segment 10.99.0.0/24: a bridge in the first node's network
 * namespace (10.99.0.1) and one veth pair per other node (10.99.0.<n+1>), each created directly
 * between the namespaces, never in the host's. Returns each node's address.
 */
export async function linkNodes(nodes: NodeNamespaces[]): Promise<string[]> {
  const [hub, ...leaves] = nodes;
  if (!hub) return [];
  const address = (i: number) => `10.99.0.${i + 1}`;
  await hub.ip(['link', 'set', 'lo', 'up']);
  await hub.ip(['link', 'add', 'swarm0', 'type', 'bridge']);
  await hub.ip(['addr', 'add', `${address(0)}/24`, 'dev', 'swarm0']);
  await hub.ip(['link', 'set', 'swarm0', 'up']);
  for (const [i, leaf] of leaves.entries()) {
    const port = `swarm-port${i + 1}`;
    await hub.ip(['link', 'add', port, 'type', 'veth', 'peer', 'name', 'swarm0', 'netns', `/proc/${leaf.anchorPid}/ns/net`]);
    await hub.ip(['link', 'set', port, 'master', 'swarm0', 'up']);
    await leaf.ip(['link', 'set', 'lo', 'up']);
    await leaf.ip(['addr', 'add', `${address(i + 1)}/24`, 'dev', 'swarm0']);
    await leaf.ip(['link', 'set', 'swarm0', 'up']);
  }
  return nodes.map((_, i) => address(i));
}

async function nsId(pid: number | string, ns: 'mnt' | 'net'): Promise<string | undefined> {
  return readlink(`/proc/${pid}/ns/${ns}`).catch(() => undefined);
}

interface Namespaces {
  mnt: string;
  net: string;
}

/** Processes in the node's mount or network namespace, and their descendants (containers under the shims). */
async function nodePids({ mnt, net }: Namespaces): Promise<number[]> {
  const parents = new Map<number, number>();
  const inNode = new Set<number>();
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    parents.set(Number(entry), ppid);
    if ((await nsId(entry, 'mnt')) === mnt || (await nsId(entry, 'net')) === net) inNode.add(Number(entry));
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!inNode.has(pid) && inNode.has(ppid)) {
        inNode.add(pid);
        grew = true;
      }
    }
  }
  inNode.delete(process.pid);
  return [...inNode];
}

async function killNode(namespaces: Namespaces): Promise<void> {
  // A process forked while we look is caught by the next pass.
  for (let pass = 0; pass < 5; pass++) {
    const pids = await nodePids(namespaces);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    const deadline = Date.now() + 5000;
    while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
  const left = await nodePids(namespaces);
  if (left.length > 0) throw new Error(`processes of the node survived SIGKILL: ${left.join(', ')}`);
}

/** A zombie counts as gone: its parent reaps it. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  return !/\) Z /.test(safeRead(`/proc/${pid}/stat`));
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** dockerd leaves its --cgroup-parent folders (in every hierarchy) behind when its containers are killed. */
export async function removeCgroups(name: string): Promise<void> {
  // Best effort: a cgroup that still has processes cannot go, and find says so on stderr.
  await execFileAsync(FIND, [CGROUP_ROOT, '-depth', '-type', 'd', '(', '-name', name, '-o', '-path', `*/${name}/*`, ')', '-delete']).catch(() => undefined);
}
