import { DEVICE_NAMES, DeviceNameAllocator, deviceSlot } from '../../../drivers/ebs/device-names.js';
import { CloudError } from '../../../core/errors.js';

describe('device names', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => (clock = 1_000_000));

  test('names run /dev/xvdba … /dev/xvdcz', () => {
    expect(DEVICE_NAMES[0]).toBe('/dev/xvdba');
    expect(DEVICE_NAMES.at(-1)).toBe('/dev/xvdcz');
    expect(DEVICE_NAMES).toHaveLength(52);
  });

  test('sd and xvd spellings name one slot', () => {
    expect(deviceSlot('/dev/sdba')).toBe(deviceSlot('/dev/xvdba'));
    expect(deviceSlot('xvdba')).toBe('ba');
  });

  test("the instance's block-device mappings are skipped, in either spelling", () => {
    const names = new DeviceNameAllocator({ now });
    expect(names.allocate(['/dev/xvda', '/dev/sdba', 'xvdbb'])).toBe('/dev/xvdbc');
  });

  test('a name being attached is not handed out twice; settled, it is free again', () => {
    const names = new DeviceNameAllocator({ now });
    expect(names.allocate([])).toBe('/dev/xvdba');
    expect(names.allocate([])).toBe('/dev/xvdbb');
    names.settle('/dev/xvdba');
    expect(names.allocate([])).toBe('/dev/xvdba');
  });

  test('a freed name stays out for the quarantine, then comes back', () => {
    const names = new DeviceNameAllocator({ now, freedQuarantineMs: 1000 });
    names.settle(names.allocate([]));
    names.freed('/dev/xvdba');
    expect(names.allocate([])).toBe('/dev/xvdbb');
    names.settle('/dev/xvdbb');
    clock += 1001;
    expect(names.allocate([])).toBe('/dev/xvdba');
  });

  test('a refused name stays out longer than a freed one', () => {
    const names = new DeviceNameAllocator({ now, freedQuarantineMs: 1000, refusedQuarantineMs: 10_000 });
    names.refused(names.allocate([]));
    clock += 5000;
    expect(names.allocate([])).toBe('/dev/xvdbb');
  });

  test('no name left: a retryable CloudError', () => {
    const names = new DeviceNameAllocator({ now });
    const err = (() => {
      try {
        return names.allocate(DEVICE_NAMES);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).retryable).toBe(true);
    expect((err as CloudError).message).toMatch(/no free device name/);
  });
});
