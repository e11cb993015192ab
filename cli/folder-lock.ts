import { createHash } from 'node:crypto';
import { mkdir, realpath } from 'node:fs/promises';
import net from 'node:net';

/** Held while a process owns a folder; gone with the process, however it ends. */
export interface FolderLock {
  /** The folder's canonical path. */
  dir: string;
  release(): Promise<void>;
}

export class FolderInUseError extends Error {}

/**
 * An abstract unix socket named after the folder's canonical path: binding it is atomic, the
 * kernel frees it when its process dies (kill -9 included), and it leaves no file to go stale.
 * Abstract sockets belong to a network namespace: two processes in different namespaces on one
 * folder are not seen (the plugin runs on the host's network).
 */
function lockAddress(dir: string): string {
  return `\0stowage-folder-${createHash('sha256').update(dir).digest('hex').slice(0, 40)}`;
}

function listen(server: net.Server, address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Who holds the lock at this address ("pid 123, stowage plugin"), or undefined when nobody does. */
function ask(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const probe = net.connect(address);
    probe.setTimeout(2000, () => probe.destroy());
    probe.on('data', (chunk: Buffer) => (text += chunk.toString()));
    probe.once('error', () => resolve(undefined));
    probe.once('close', () => resolve(text.trim() || undefined));
  });
}

/**
 * Takes a folder for this process, before anything is started on it; refuses at once, naming
 * the holder, when another process has it.
 */
export async function lockFolder(dir: string, holder: string): Promise<FolderLock> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const canonical = await realpath(dir);
  const address = lockAddress(canonical);
  const server = net.createServer((c) => c.end(`pid ${process.pid}, ${holder}\n`));
  try {
    await listen(server, address);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    const who = await ask(address);
    throw new FolderInUseError(`${canonical} is already in use by ${who ?? 'another stowage process'}; stop it first, or use another folder`);
  }
  // The lock lives as long as the process, but does not keep it alive.
  server.unref();
  return { dir: canonical, release: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Who holds a folder, or undefined when no live process does (a crash leaves nothing behind). */
export async function folderHolder(dir: string): Promise<string | undefined> {
  const canonical = await realpath(dir).catch(() => undefined);
  return canonical === undefined ? undefined : ask(lockAddress(canonical));
}
