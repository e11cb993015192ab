import { DescribeVolumesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { callAws } from '../../../aws/call.js';
import { CallCounter } from '../../../aws/call-counter.js';
import { createAwsClients } from '../../../aws/clients.js';
import { hasCode, isNotFound, toCloudError } from '../../../aws/errors.js';
import { CloudError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import { ec2Error } from './ec2-error.js';

const FAST = { minDelayMs: 5, maxDelayMs: 20, factor: 2 };
const ec2Mock = mockClient(EC2Client);
const ec2 = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

function describe_(counter: CallCounter, deadlineMs = 2000) {
  return callAws(counter, 'DescribeVolumes', () => ec2.send(new DescribeVolumesCommand({})), {
    deadline: Date.now() + deadlineMs,
    log: silentLogger,
    context: { volume: 'data', volumeId: 'vol-1' },
    retry: FAST,
  });
}

beforeEach(() => ec2Mock.reset());

describe('callAws', () => {
  test('a success is counted once as ok', async () => {
    ec2Mock.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    const counter = new CallCounter();
    await describe_(counter);
    expect(counter.snapshot()).toEqual({ DescribeVolumes: { ok: 1, throttled: 0, error: 0 } });
  });

  test('throttling and 5xx are retried, each attempt counted by outcome', async () => {
    ec2Mock
      .on(DescribeVolumesCommand)
      .rejectsOnce(ec2Error('RequestLimitExceeded', 503))
      .rejectsOnce(ec2Error('Throttling', 400))
      .rejectsOnce(ec2Error('InternalError', 500))
      .resolves({ Volumes: [] });
    const counter = new CallCounter();
    await describe_(counter);
    expect(counter.snapshot()).toEqual({ DescribeVolumes: { ok: 1, throttled: 2, error: 1 } });
  });

  test('a socket hang-up, which the SDK wraps in a plain Error, is retried like any network failure', async () => {
    // As the SDK throws it: name "Error", the real kind only in the message (seen under load on localcloud).
    const hangUp = Object.assign(new Error('AWS SDK error wrapper for TimeoutError: socket hang up'), { $metadata: { attempts: 1 } });
    ec2Mock.on(DescribeVolumesCommand).rejectsOnce(hangUp).resolves({ Volumes: [] });
    const counter = new CallCounter();
    await expect(describe_(counter)).resolves.toEqual({ Volumes: [] });
    expect(counter.count('DescribeVolumes', 'error')).toBe(1);
    expect(counter.count('DescribeVolumes', 'ok')).toBe(1);
  });

  test('HTTP 429 without a known code counts as throttling', async () => {
    ec2Mock.on(DescribeVolumesCommand).rejectsOnce(ec2Error('SomethingNew', 429)).resolves({});
    const counter = new CallCounter();
    await describe_(counter);
    expect(counter.count('DescribeVolumes', 'throttled')).toBe(1);
  });

  test('throttling past the deadline gives up with a retryable CloudError carrying the code and request id', async () => {
    ec2Mock.on(DescribeVolumesCommand).rejects(ec2Error('RequestLimitExceeded', 503, 'Request limit exceeded.', 'req-42'));
    const counter = new CallCounter();
    const err = (await describe_(counter, 150).catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect(err.code).toBe('RequestLimitExceeded');
    expect(err.retryable).toBe(true);
    expect(err.context).toMatchObject({ volumeId: 'vol-1', requestId: 'req-42' });
    expect(err.message).toMatch(/^DescribeVolumes failed: EC2 kept throttling the calls until the deadline: Request limit exceeded\./);
    expect(counter.count('DescribeVolumes', 'throttled')).toBeGreaterThan(2);
    expect(counter.count('DescribeVolumes', 'ok')).toBe(0);
  });

  test('a deadline already past still sends the request once, without retries', async () => {
    ec2Mock.on(DescribeVolumesCommand).rejects(ec2Error('RequestLimitExceeded', 503));
    const counter = new CallCounter();
    await expect(describe_(counter, -10)).rejects.toBeInstanceOf(CloudError);
    expect(counter.count()).toBe(1);
  });

  test('a non-retryable error is sent once and becomes a CloudError at once', async () => {
    ec2Mock.on(DescribeVolumesCommand).rejects(ec2Error('UnauthorizedOperation', 403, 'You are not authorized'));
    const counter = new CallCounter();
    const err = (await describe_(counter).catch((e: unknown) => e)) as CloudError;
    expect(counter.snapshot()).toEqual({ DescribeVolumes: { ok: 0, throttled: 0, error: 1 } });
    expect(err.code).toBe('UnauthorizedOperation');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain("the node's IAM role does not allow this call");
  });
});

describe('EC2 error codes become clear messages', () => {
  const cases: [string, RegExp][] = [
    ['InvalidVolume.NotFound', /the EBS volume does not exist/],
    ['InvalidInstanceID.NotFound', /the instance does not exist/],
    ['IncorrectState', /not in a state that allows this/],
    ['VolumeInUse', /attached to an instance/],
    ['InvalidVolume.ZoneMismatch', /different availability zones/],
    ['InvalidParameterValue', /device name is already in use/],
    ['IdempotentParameterMismatch', /same client token asked for other parameters/],
    ['UnauthorizedOperation', /IAM role does not allow/],
    ['VolumeLimitExceeded', /quota is reached/],
    ['AttachmentLimitExceeded', /no free volume attachment slot/],
    ['InsufficientVolumeCapacity', /no capacity/],
    ['InvalidSnapshot.NotFound', /snapshot does not exist/],
  ];
  test.each(cases)('%s', (code, explanation) => {
    const err = toCloudError(ec2Error(code, 400, 'AWS says no', 'req-7'), 'AttachVolume', { volume: 'data', volumeId: 'vol-9', instance: 'i-1' });
    expect(err.code).toBe(code);
    expect(err.message).toMatch(explanation);
    expect(err.message).toMatch(/^AttachVolume failed: .*AWS says no/);
    expect(err.message).toContain(`[${code}]`);
    expect(err.context).toEqual({ volume: 'data', volumeId: 'vol-9', instance: 'i-1', requestId: 'req-7' });
  });

  test('not-found codes are recognised as such, others by code', () => {
    expect(isNotFound(toCloudError(ec2Error('InvalidVolume.NotFound'), 'X', {}))).toBe(true);
    expect(isNotFound(toCloudError(ec2Error('VolumeInUse'), 'X', {}))).toBe(false);
    expect(hasCode(toCloudError(ec2Error('VolumeInUse'), 'X', {}), 'VolumeInUse')).toBe(true);
  });
});

describe('createAwsClients', () => {
  test('turns the SDK retries off and honours the endpoint', async () => {
    const { ec2: client, efs } = createAwsClients({ region: 'eu-west-1', endpointUrl: 'http://127.0.0.1:4566', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
    expect(await client.config.maxAttempts()).toBe(1);
    expect(await efs.config.maxAttempts()).toBe(1);
    expect(await client.config.region()).toBe('eu-west-1');
    const endpoint = await client.config.endpoint!();
    expect(`${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`).toBe('http://127.0.0.1:4566');
  });
});
