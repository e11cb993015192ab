/** The operator's side of the chaos run: `stowage snapshot` and `stowage gc --apply`, the built CLI as an operator runs it. */
import type { Localcloud } from '../../localcloud/index.js';
import { PLUGIN_MAIN } from '../helpers/plugin-process.js';
import { run } from '../helpers/run.js';
import { CLUSTER, CREDENTIALS } from '../faults/fault-bed.js';

/** What dockerd sends for `docker volume create -d stowage --opt size=1 NAME` on a relocatable default. */
export const RELOCATABLE_OPTS = { backing: 'relocatable', size: '1' };

/** Runs `stowage ARGS` against the run's localcloud; answers the exit code and the last line it printed. */
export async function operatorCommand(lc: Localcloud, args: string[]): Promise<string> {
  const r = await run(process.execPath, [PLUGIN_MAIN, ...args, '--endpoint', lc.url, '--region', lc.region, '--cluster', CLUSTER], {
    allowFailure: true,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_NO_WARNINGS: '1', AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey },
  });
  const last = (r.code === 0 ? r.stdout : r.stderr).trim().split('\n').pop() ?? '';
  return `exit ${r.code}${last ? `: ${last.slice(0, 160)}` : ''}`;
}
