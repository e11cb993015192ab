import { promises as fs } from 'node:fs';
import path from 'node:path';

/** temp file, fsync, rename, fsync of the folder: a crash leaves the old or the new file. */
export async function writeAtomically(file: string, body: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await fs.open(temp, 'w', 0o600);
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await fs.rename(temp, file);
  const dir = await fs.open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
