import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeAtomically } from '../core/atomic-file.js';
import { folderHolder } from './folder-lock.js';

/**
 * How the `stowage` CLI reaches the localcloud embedded in a plugin on this machine: its URL and
 * region, and the per-start token it requires, in a 0600 file under STOWAGE_STATE_DIR (root only).
 */
export interface EmbeddedEndpoint {
  url: string;
  region: string;
  token: string;
}

const FILE = 'embedded-localcloud.json';

export function endpointFile(stateDir: string): string {
  return path.join(stateDir, FILE);
}

export async function publishEndpoint(stateDir: string, endpoint: EmbeddedEndpoint): Promise<void> {
  await writeAtomically(endpointFile(stateDir), JSON.stringify(endpoint) + '\n');
}

export async function withdrawEndpoint(stateDir: string): Promise<void> {
  await rm(endpointFile(stateDir), { force: true });
}

/** The token as SDK credentials: localcloud reads it back from the signature's access key id. */
export function tokenCredentials(token: string): { accessKeyId: string; secretAccessKey: string } {
  return { accessKeyId: token, secretAccessKey: token };
}

/**
 * The embedded localcloud of the plugin that holds stateDir now; undefined when no plugin runs
 * there (a file a crash left is ignored) or it runs on AWS.
 */
export async function findEmbeddedEndpoint(stateDir: string): Promise<EmbeddedEndpoint | undefined> {
  let text: string;
  try {
    text = await readFile(endpointFile(stateDir), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EACCES') throw new Error(`${endpointFile(stateDir)}: permission denied; the embedded localcloud serves root only`);
    throw err;
  }
  if ((await folderHolder(stateDir)) === undefined) return undefined;
  const parsed = JSON.parse(text) as Partial<EmbeddedEndpoint>;
  if (typeof parsed.url !== 'string' || typeof parsed.region !== 'string' || typeof parsed.token !== 'string') {
    throw new Error(`${endpointFile(stateDir)} is malformed; restart the plugin`);
  }
  return { url: parsed.url, region: parsed.region, token: parsed.token };
}
