import { loadConfig } from '../../../plugin/config.js';
import { parseOptions } from '../../../plugin/options/parse.js';

describe('STOWAGE_DR_REGION and STOWAGE_DR_KMS_KEY_ID', () => {
  test('off by default; a region becomes the drregion of a Create that gives none, and the option still wins', () => {
    expect(loadConfig({}).lifecycle.drregion).toBeUndefined();
    expect(loadConfig({}).drKmsKeyId).toBeUndefined();
    const c = loadConfig({ AWS_REGION: 'us-east-1', STOWAGE_DR_REGION: 'us-west-2', STOWAGE_DR_KMS_KEY_ID: 'alias/stowage-dr' });
    expect(c.lifecycle.drregion).toBe('us-west-2');
    expect(c.drKmsKeyId).toBe('alias/stowage-dr');
    const given = (opts: Record<string, string>) => parseOptions({ backing: 'relocatable', ...opts }, 'shared', c.cost, c.lifecycle);
    expect(given({})).toMatchObject({ options: { drregion: 'us-west-2' } });
    expect(given({ drregion: 'eu-west-1' })).toMatchObject({ options: { drregion: 'eu-west-1' } });
  });

  test.each([
    [{ STOWAGE_DR_REGION: 'west' }, /STOWAGE_DR_REGION="west" is not valid: expected an AWS region/],
    [{ AWS_REGION: 'us-east-1', STOWAGE_DR_REGION: 'us-east-1' }, /STOWAGE_DR_REGION="us-east-1" is not valid: expected a region other than AWS_REGION=us-east-1/],
    [{ STOWAGE_DR_KMS_KEY_ID: 'my key' }, /STOWAGE_DR_KMS_KEY_ID="my key" is not valid: expected a KMS key id/],
  ])('refused at start, naming the setting and what is allowed: %j', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });
});
