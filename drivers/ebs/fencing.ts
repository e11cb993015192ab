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
  /** STOWAGE_FENCE: when another node's hold may be broken. */
  mode: FenceMode;
}

/** heartbeat: a stopped holder, or one whose heartbeat stopped changing; stopped: only a stopped one; off: never. */
export type FenceMode = 'heartbeat' | 'stopped' | 'off';
export const FENCE_MODES: readonly FenceMode[] = ['heartbeat', 'stopped', 'off'];

/** A heartbeat this far ahead of the judge's clock is not a beat (a forged or broken clock). */
const MAX_SKEW_MS = 5 * 60_000;

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
  /** Each holder's heartbeat as last seen, and since when (this node's clock) it has not changed. */
  private readonly seen = new Map<string, { value: string; since: number }>();

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
    // Milliseconds, so that every beat writes a new value: judges look for change, not for age.
    const value = String(Math.floor(now()));
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

  /**
   * Invariant 7: force-detaching from `holder` is allowed only when it is stopped or terminated, or
   * (STOWAGE_FENCE=heartbeat) its heartbeat has not changed for fenceAfterMs as observed on this
   * node's own clock. The value is never compared with our clock to judge freshness; a value far
   * ahead of it is distrusted, so a forged or broken clock cannot keep a dead holder alive.
   */
  async judge(holder: string, deadline: number, log: Logger): Promise<HolderVerdict> {
    const { ec2, counter, fenceAfterMs, now, mode } = this.options;
    if (mode === 'off') return { fenceable: false, reason: `STOWAGE_FENCE=off: Stowage never force-detaches from instance ${holder}` };
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
    if (mode === 'stopped') return { fenceable: false, reason: `instance ${holder} is ${state} (STOWAGE_FENCE=stopped fences only stopped or terminated holders)` };
    const beat = instance.Tags?.find((t) => t.Key === Tags.heartbeat)?.Value;
    if (beat === undefined || !/^[0-9]{1,16}$/.test(beat)) {
      // No heartbeat at all: not a Stowage node (or one from before fencing), so nothing tells us it is dead.
      return { fenceable: false, reason: `instance ${holder} is ${state ?? 'in an unknown state'} and keeps no Stowage heartbeat` };
    }
    const at = now();
    const seen = this.seen.get(holder);
    // Epoch ms (earlier versions wrote seconds: read as ms, those only look old, never ahead).
    const distrusted = Number(beat) > at + MAX_SKEW_MS;
    if (!seen || (seen.value !== beat && !distrusted)) {
      this.seen.set(holder, { value: beat, since: at });
      return { fenceable: false, reason: `instance ${holder} is ${state} and its Stowage heartbeat is being watched`, staleAt: at + fenceAfterMs + 1 };
    }
    if (distrusted && seen.value !== beat) log.warn({ instance: holder, heartbeat: beat }, 'heartbeat value far ahead of this node\'s clock; not counted as a beat');
    const unchanged = at - seen.since;
    const judged = `its Stowage heartbeat has not changed for ${Math.round(unchanged / 1000)} s on this node's clock`;
    if (unchanged >= fenceAfterMs) {
      return { fenceable: true, reason: `instance ${holder} is ${state}, but ${judged} (fence after ${fenceAfterMs / 1000} s)` };
    }
    return { fenceable: false, reason: `instance ${holder} is ${state} and ${judged} (fence after ${fenceAfterMs / 1000} s)`, staleAt: seen.since + fenceAfterMs + 1 };
  }
}
