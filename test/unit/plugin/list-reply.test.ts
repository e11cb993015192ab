import { ListReply } from '../../../plugin/list-reply.js';
import type { VolumeView } from '../../../plugin/volume-service.js';

const view = (name: string, extra: Partial<VolumeView> = {}): VolumeView => ({ name, createdAt: '2026-11-26T07:00:00.000Z', status: { size: 1 }, ...extra });

describe('List reply', () => {
  test('is the protocol JSON, without the fields a volume does not have', () => {
    const reply = new ListReply();
    const bytes = reply.bytes([view('a'), view('b', { mountpoint: '/mnt/b', createdAt: undefined }), view('c', { mountpoint: '' })]);
    expect(JSON.parse(bytes.toString('utf8'))).toEqual({
      Volumes: [
        { Name: 'a', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { size: 1 } },
        { Name: 'b', Mountpoint: '/mnt/b', Status: { size: 1 } },
        { Name: 'c', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { size: 1 } },
      ],
      Err: '',
    });
    expect(JSON.parse(reply.bytes([]).toString('utf8'))).toEqual({ Volumes: [], Err: '' });
  });

  test('reuses its bytes while the views are the same objects, and serializes again when one changes', () => {
    const reply = new ListReply();
    const a = view('a');
    const b = view('b');
    const first = reply.bytes([a, b]);
    expect(reply.bytes([a, b])).toBe(first);

    const mounted = view('b', { mountpoint: '/mnt/b', status: { size: 1, mountedHere: true, references: 1 } });
    const changed = reply.bytes([a, mounted]);
    expect(changed).not.toBe(first);
    expect(JSON.parse(changed.toString('utf8')).Volumes[1]).toEqual({ Name: 'b', Mountpoint: '/mnt/b', CreatedAt: '2026-11-26T07:00:00.000Z', Status: { size: 1, mountedHere: true, references: 1 } });
    expect(JSON.parse(reply.bytes([a]).toString('utf8')).Volumes).toHaveLength(1);
  });

  test('a name with characters outside ASCII is encoded as UTF-8', () => {
    const bytes = new ListReply().bytes([view('a', { status: { moving: 'us-east-1a → us-east-1b' } })]);
    expect(JSON.parse(bytes.toString('utf8')).Volumes[0].Status.moving).toBe('us-east-1a → us-east-1b');
  });
});
