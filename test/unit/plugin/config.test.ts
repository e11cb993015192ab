import { loadConfig } from '../../../plugin/config.js';
import { ConfigError } from '../../../core/errors.js';

describe('loadConfig', () => {
  test('defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      backend: 'aws', cluster: 'default', defaultBacking: 'shared', socket: '/run/docker/plugins/stowage.sock',
      mountRoot: '/mnt/stowage', stateDir: '/var/lib/stowage', mountTimeoutMs: 100_000, deviceDir: '/dev/disk/by-id',
      snapshotOnUnmount: true, sharedDelete: false, logLevel: 'info', efsMode: 'directory',
    });
    expect(loadConfig({}, { backend: 'local' }).backend).toBe('local');
    expect(loadConfig({ STOWAGE_BACKEND: 'aws' }, { backend: 'local' }).backend).toBe('aws');
  });

  test('durations and addresses', () => {
    const c = loadConfig({ STOWAGE_MOUNT_TIMEOUT: '30s', STOWAGE_FENCE_AFTER: '2m', STOWAGE_METRICS_ADDR: ':9337' });
    expect(c.mountTimeoutMs).toBe(30_000);
    expect(c.fenceAfterMs).toBe(120_000);
    expect(c.metricsAddr).toEqual({ host: '127.0.0.1', port: 9337 });
  });

  test.each([
    ['STOWAGE_BACKEND', 'gcp'],
    ['STOWAGE_DEFAULT_BACKING', 'floppy'],
    ['STOWAGE_SOCKET', 'relative.sock'],
    ['STOWAGE_MOUNT_ROOT', '/mnt/../etc'],
    ['STOWAGE_MOUNT_TIMEOUT', '300'],
    ['STOWAGE_MOUNT_TIMEOUT', 'soon'],
    ['STOWAGE_CLUSTER', 'a b'],
    ['STOWAGE_LOG_LEVEL', 'loud'],
    ['STOWAGE_METRICS_ADDR', 'localhost'],
    ['AWS_REGION', 'mars'],
    ['AWS_ENDPOINT_URL', 'ftp://x'],
    ['STOWAGE_EFS_ID', 'efs-1'],
    ['STOWAGE_SNAPSHOT_ON_UNMOUNT', 'yes'],
  ])('%s=%s stops the start with a line naming it', (variable, value) => {
    expect(() => loadConfig({ [variable]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [variable]: value })).toThrow(variable);
  });

  test('instance id and zone go together', () => {
    expect(() => loadConfig({ STOWAGE_INSTANCE_ID: 'i-0123456789abcdef0' })).toThrow('STOWAGE_AZ');
    expect(loadConfig({ STOWAGE_INSTANCE_ID: 'i-0123456789abcdef0', STOWAGE_AZ: 'us-east-1b' }).az).toBe('us-east-1b');
  });

  test('a localcloud URL needs its folder', () => {
    expect(() => loadConfig({ STOWAGE_LOCALCLOUD_URL: 'http://127.0.0.1:4566' })).toThrow('STOWAGE_LOCALCLOUD_DIR');
  });
});
