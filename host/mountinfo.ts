import { readFile } from 'node:fs/promises';
import { HostError } from '../core/errors.js';
import type { MountEntry } from './host.js';

/** A mountinfo line with what only the kernel's own view has. */
export interface MountinfoEntry extends MountEntry {
  /** `major:minor` of the mounted filesystem's device: for a block device, the device's own number. */
  devno: string;
}

/**
 * The kernel escapes space, tab, newline and backslash in mountinfo paths as three octal digits
 * (`\040`); nothing else is escaped.
 */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses /proc/<pid>/mountinfo (proc(5)):
 * `36 35 98:0 /root /target rw,noatime [optional fields…] - fstype source super-options`.
 * The optional fields vary in number, so the fields after the ` - ` separator are found by it.
 */
export function parseMountinfo(text: string): MountinfoEntry[] {
  const entries: MountinfoEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 10 || separator < 0 || fields.length < separator + 3) {
      throw new HostError(`malformed mountinfo line: ${JSON.stringify(line)}`);
    }
    entries.push({
      mountId: Number(fields[0]),
      devno: fields[2],
      root: unescapeMountField(fields[3]),
      target: unescapeMountField(fields[4]),
      options: fields[5],
      fstype: fields[separator + 1],
      source: unescapeMountField(fields[separator + 2]),
    });
  }
  return entries;
}

export async function readMountinfo(path = '/proc/self/mountinfo'): Promise<MountinfoEntry[]> {
  return parseMountinfo(await readFile(path, 'utf8'));
}
