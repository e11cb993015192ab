import { loadConfig } from '../../../plugin/config.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { backupsToPrune, snapshotsToPrune } from '../../../snapshot/retention.js';

const snap = (id: string, reason: string, state = 'completed') => ({ id, reason, state });

describe('backup retention (issue 17.3)', () => {
  test('keeps the newest backupretain completed backups; never operator snapshots, pending ones or protected ones', () => {
    const newestFirst = [snap('b5', 'backup', 'pending'), snap('b4', 'backup'), snap('op', 'operator'), snap('b3', 'backup'), snap('m1', 'move'), snap('b2', 'backup'), snap('b1', 'backup')];
    expect(backupsToPrune(newestFirst, 2, new Set()).map((s) => s.id)).toEqual(['b2', 'b1']);
    expect(backupsToPrune(newestFirst, 2, new Set(['b1'])).map((s) => s.id)).toEqual(['b2']);
    // The moving-aid policy does not count backups, nor delete them.
    expect(snapshotsToPrune(newestFirst, 0, new Set()).map((s) => s.id)).toEqual(['m1']);
  });
});

describe('STOWAGE_BACKUP_DEFAULT and STOWAGE_BACKUP_MIN_INTERVAL', () => {
  test('intervals below 1 minute are refused unless the floor allows them', () => {
    const floor = loadConfig({}).lifecycle;
    expect(floor).toEqual({ backupMinIntervalMs: 60_000 });
    expect(() => parseOptions({ backing: 'relocatable', backup: '30s' }, 'relocatable', undefined, floor)).toThrow('invalid option backup="30s": at least 60s (STOWAGE_BACKUP_MIN_INTERVAL)');
    const tests = loadConfig({ STOWAGE_BACKUP_MIN_INTERVAL: '2s' }).lifecycle;
    expect(parseOptions({ backing: 'relocatable', backup: '2s' }, 'relocatable', undefined, tests).options.backup).toBe('2s');
  });

  test('the default applies to a Create without backup, is checked at start, and off means none', () => {
    const lifecycle = loadConfig({ STOWAGE_BACKUP_DEFAULT: '6h' }).lifecycle;
    expect(parseOptions({ backing: 'relocatable' }, 'relocatable', undefined, lifecycle).options.backup).toBe('6h');
    expect(parseOptions({ backing: 'relocatable', backup: 'off' }, 'relocatable', undefined, lifecycle).options.backup).toBeUndefined();
    expect(() => loadConfig({ STOWAGE_BACKUP_DEFAULT: '30s' })).toThrow('STOWAGE_BACKUP_DEFAULT="30s" is not valid: expected an interval such as 30m, 6h or 1d, at least 60s');
    expect(() => loadConfig({ STOWAGE_BACKUP_MIN_INTERVAL: 'soon' })).toThrow('STOWAGE_BACKUP_MIN_INTERVAL="soon" is not valid');
  });
});
