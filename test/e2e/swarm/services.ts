/** Swarm services with a Stowage volume, seen from the manager: where their task runs, what it wrote, what a move cost. */
import { HEARTBEAT, type AwsCall } from './aws-call-log.js';
import type { Swarm, SwarmMember } from './swarm-cluster.js';
import { PLUGIN_NAME } from './swarm-node.js';

/** Each start of the task appends the node it runs on; `sync` because a lost node loses what is not on disk. */
const WRITER = 'echo "start on $NODE" >> /data/log && sync && exec sleep 100000';

export interface TaskState {
  node: string;
  state: string;
  error: string;
}

export interface WriterServiceOptions {
  constraints: string[];
  /** Default: one 1 GiB relocatable volume. */
  volumeOpts?: string[];
  /** Default 1; more replicas run one per node. */
  replicas?: number;
}

/** A service whose volume `name` is mounted at /data; each start of a task appends its node's name to /data/log. */
export async function createWriterService(swarm: Swarm, name: string, o: WriterServiceOptions): Promise<void> {
  const opts = (o.volumeOpts ?? ['backing=relocatable', 'size=1']).map((opt) => `volume-opt=${opt}`).join(',');
  const replicas = o.replicas ?? 1;
  await swarm.docker(swarm.manager, [
    'service', 'create', '--detach', '--name', name, '--no-resolve-image',
    '--replicas', String(replicas), ...(replicas > 1 ? ['--replicas-max-per-node', '1'] : []),
    // sh as PID 1 ignores SIGTERM: without this the old task's 10 s stop dominates every move.
    '--stop-grace-period', '1s',
    '--env', 'NODE={{.Node.Hostname}}',
    '--mount', `type=volume,source=${name},target=/data,volume-driver=${PLUGIN_NAME},${opts}`,
    ...o.constraints.flatMap((c) => ['--constraint', c]),
    swarm.image, 'sh', '-c', WRITER,
  ]);
}

/** The service's tasks, newest first, with the full error text: those Swarm wants running, or all it ever made. */
export async function tasks(swarm: Swarm, service: string, which: 'desired' | 'all' = 'desired'): Promise<TaskState[]> {
  const out = await swarm.docker(swarm.manager, [
    'service', 'ps', '--no-trunc', ...(which === 'desired' ? ['--filter', 'desired-state=running'] : []),
    '--format', '{{.Node}}\t{{.CurrentState}}\t{{.Error}}', service,
  ]);
  return out.split('\n').filter((l) => l !== '').map((l) => {
    const [node = '', state = '', error = ''] = l.split('\t');
    return { node, state, error };
  });
}

/** Waits until the service's task runs on `node`; returns when that was seen (epoch ms). */
export async function waitForTaskOn(swarm: Swarm, service: string, node: SwarmMember, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await tasks(swarm, service)).some((t) => t.node === node.hostname && t.state.startsWith('Running'))) return Date.now();
    if (Date.now() > deadline) {
      const history = (await tasks(swarm, service, 'all')).map((t) => `${t.node} ${t.state} ${t.error}`).join('\n');
      throw new Error(`task of ${service} not running on ${node.hostname} after ${timeoutMs} ms; tasks:\n${history}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** /data/log as the service's running container on `node` sees it. */
export async function volumeLog(swarm: Swarm, service: string, node: SwarmMember): Promise<string> {
  const ids = await swarm.docker(node, ['ps', '-q', '--filter', `label=com.docker.swarm.service.name=${service}`]);
  const id = ids.split('\n').find((l) => l !== '');
  if (!id) throw new Error(`no container of ${service} on ${node.hostname}`);
  return swarm.docker(node, ['exec', id, 'cat', '/data/log']);
}

/** Removes the service and waits until no node runs a container of it (so its volume is unmounted). */
export async function removeService(swarm: Swarm, service: string, nodes: SwarmMember[]): Promise<void> {
  await swarm.manager.docker(['service', 'rm', service], { allowFailure: true });
  const deadline = Date.now() + 30_000;
  for (const node of nodes) {
    for (;;) {
      const r = await node.docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${service}`], { allowFailure: true });
      if (r.code !== 0 || r.stdout.trim() === '' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** What a move cost: wall time and the AWS calls all plugins sent meanwhile, by action. */
export function moveReport(scenario: string, calls: AwsCall[], startedAt: number, runningAt: number): string {
  const byAction: Record<string, number> = {};
  for (const c of calls) byAction[c.action] = (byAction[c.action] ?? 0) + 1;
  const heartbeats = byAction[HEARTBEAT] ?? 0;
  return `[swarm e2e] ${scenario}: task running on the new node ${runningAt - startedAt} ms after the move began; ` +
    `AWS calls by all plugins meanwhile: ${calls.length - heartbeats} (+${heartbeats} heartbeats) ${JSON.stringify(byAction)}`;
}
