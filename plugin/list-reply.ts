import type { VolumeView } from './volume-service.js';

/** One object shape for every volume (JSON leaves out the undefined fields). */
export function protocolVolume(v: VolumeView): Record<string, unknown> {
  return { Name: v.name, Mountpoint: v.mountpoint || undefined, CreatedAt: v.createdAt || undefined, Status: v.status };
}

function sameParts(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

/**
 * List's reply, serialized once per change. A List of 1,000 volumes is 230 kB of JSON that V8
 * needs about 2 ms to stringify and encode, against a tenth of that to send bytes already made;
 * dockerd lists on every `docker volume ls` and on each service reconcile. A volume's JSON is kept
 * for as long as its view object lives (views are the same object while nothing about the volume
 * changed), and the whole reply while every volume's JSON is the same.
 */
export class ListReply {
  private readonly parts = new WeakMap<VolumeView, string>();
  private last: { parts: string[]; bytes: Buffer } | undefined;

  bytes(views: VolumeView[]): Buffer {
    const parts = views.map((view) => {
      let part = this.parts.get(view);
      if (part === undefined) {
        part = JSON.stringify(protocolVolume(view));
        this.parts.set(view, part);
      }
      return part;
    });
    if (this.last && sameParts(this.last.parts, parts)) return this.last.bytes;
    const bytes = Buffer.from(`{"Volumes":[${parts.join(',')}],"Err":""}`);
    this.last = { parts, bytes };
    return bytes;
  }
}
