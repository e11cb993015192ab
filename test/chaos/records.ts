/**
 * What the chaos run's "containers" write into a volume: numbered records, each with a checksum,
 * appended and fsynced. Reading them back says how many survived and whether any is damaged or
 * belongs to another life of the name (a volume removed and created again starts empty).
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';

const FILE = 'chaos-records.log';

function checksum(life: string, seq: number, payload: string): string {
  return createHash('sha256').update(`${life} ${seq} ${payload}`).digest('hex').slice(0, 16);
}

/** Appends records from+1 … from+count and fsyncs them; resolves once they are on the device. */
export async function appendRecords(mountpoint: string, life: string, from: number, count: number): Promise<void> {
  const lines: string[] = [];
  for (let seq = from + 1; seq <= from + count; seq++) {
    const payload = `${'x'.repeat(seq % 97)}${seq}`;
    lines.push(`${life} ${seq} ${checksum(life, seq, payload)} ${payload}\n`);
  }
  const file = await open(path.join(mountpoint, FILE), 'a');
  try {
    await file.appendFile(lines.join(''));
    await file.sync();
  } finally {
    await file.close();
  }
}

export interface ReadBack {
  /** Records 1 … count are present and intact. */
  count: number;
  /** What is wrong, when something is: a damaged line, a gap, a record of another life. */
  damage?: string;
}

export async function readRecords(mountpoint: string, life: string): Promise<ReadBack> {
  let text: string;
  try {
    text = await readFile(path.join(mountpoint, FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { count: 0 };
    throw err;
  }
  // The part after the last newline is a record cut short before its fsync: no damage, and not counted.
  const lines = text.split('\n').slice(0, -1);
  let count = 0;
  for (const line of lines) {
    const [lineLife, seqText, sum, payload] = line.split(' ');
    const seq = Number(seqText);
    if (lineLife !== life) return { count, damage: `record ${count + 1} belongs to life ${lineLife}, not ${life}: ${line.slice(0, 60)}` };
    if (seq !== count + 1 || payload === undefined || sum !== checksum(life, seq, payload)) return { count, damage: `record ${count + 1} damaged: ${line.slice(0, 60)}` };
    count = seq;
  }
  return { count };
}
