import { CreateTagsCommand, DescribeInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { Logger } from '../../core/log.js';
import { callAws } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import { isNotFound } from '../../aws/errors.js';
import { Tags } from '../../core/schema/tags.js';

export interface FencingOptions {
  ec2: EC2Client;
  counter: CallCounter;
  instanceId: string;
  fenceAfterMs: number;
  /** How often this node refreshes its own heartbeat; well under fenceAfterMs. */
  heartbeatIntervalMs: number;
  now: () => number;
  log: Logger;
}

/** Whether another instance's hold on a volume may be broken (DESIGN.md invariant 7), and why. */
export interface HolderVerdict {
  fenceable: boolean;
  reason: string;
  /** Epoch ms when a silent heartbeat will have aged past fenceAfterMs: worth looking again then. */
  staleAt?: number;
}

const GONE_STATES = new Set(['stopped', 'terminated']);

/**
 * The heartbeat this node keeps (one tag on its own instance per interval, not one per volume: the
 * CreateTags budget is 10/s for the whole account), and the judgement of another node's.
 */
export class Fencing {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: FencingOptions) {}

  /** Beats now, then every interval, until stop(). */
  start(): void {
    if (this.timer) return;
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.options.heartbeatIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Never throws: a missed beat is retried at the next interval, and fenceAfterMs allows for several. */
  async beat(): Promise<void> {
    const { ec2, counter, instanceId, now, log } = this.options;
    const value = String(Math.floor(now() / 1000));
    try {
      await callAws(
        counter,
        'CreateTags',
        () => ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: [{ Key: Tags.heartbeat, Value: value }] })),
        { deadline: now() + this.options.heartbeatIntervalMs / 2, log, context: { instance: instanceId } },
      );
    } catch (err) {
      log.warn({ err, instance: instanceId }, 'heartbeat not written; other nodes may fence this one if it keeps failing');
    }
  }

  /** Force-detaching from `holder` is allowed only when it is stopped or terminated, or its heartbeat is stale. */
  async judge(holder: string, deadline: number, log: Logger): Promise<HolderVerdict> {
    const { ec2, counter, fenceAfterMs, now } = this.options;
    let out;
    try {
      out = await callAws(counter, 'DescribeInstances', () => ec2.send(new DescribeInstancesCommand({ InstanceIds: [holder] })), {
        deadline,
        log,
        context: { instance: holder },
      });
    } catch (err) {
      if (isNotFound(err)) return { fenceable: true, reason: `instance ${holder} no longer exists` };
      throw err;
    }
    const instance = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === holder);
    const state = instance?.State?.Name;
    if (!instance || (state && GONE_STATES.has(state))) return { fenceable: true, reason: `instance ${holder} is ${state ?? 'gone'}` };
    const beat = instance.Tags?.find((t) => t.Key === Tags.heartbeat)?.Value;
    if (beat === undefined || !/^[0-9]+$/.test(beat)) {
      // No heartbeat at all: not a Stowage node (or one from before fencing), so nothing tells us it is dead.
      return { fenceable: false, reason: `instance ${holder} is ${state ?? 'in an unknown state'} and keeps no Stowage heartbeat` };
    }
    const beatMs = Number(beat) * 1000;
    const age = now() - beatMs;
    if (age > fenceAfterMs) {
      return { fenceable: true, reason: `instance ${holder} is ${state}, but its Stowage heartbeat is ${Math.round(age / 1000)} s old (fence after ${fenceAfterMs / 1000} s)` };
    }
    return { fenceable: false, reason: `instance ${holder} is ${state} and its Stowage heartbeat is ${Math.round(age / 1000)} s old`, staleAt: beatMs + fenceAfterMs + 1 };
  }
}
