export type CallOutcome = 'ok' | 'throttled' | 'error';

/** One request sent: `attempt` is 1 for the first try of a call, more for its retries. */
export interface CallRecord {
  operation: string;
  outcome: CallOutcome;
  attempt: number;
}

export type CallListener = (record: CallRecord) => void;

/** Every AWS request sent, per operation and outcome; tests assert on it, metrics export it. */
export class CallCounter {
  private readonly counts = new Map<string, Record<CallOutcome, number>>();
  private readonly listeners = new Set<CallListener>();

  record(operation: string, outcome: CallOutcome, attempt = 1): void {
    let entry = this.counts.get(operation);
    if (!entry) {
      entry = { ok: 0, throttled: 0, error: 0 };
      this.counts.set(operation, entry);
    }
    entry[outcome] += 1;
    for (const listener of this.listeners) listener({ operation, outcome, attempt });
  }

  /** Calls `listener` for every request recorded from now on (metrics); returns the unsubscribe. */
  onRecord(listener: CallListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Requests sent for `operation` (every operation when omitted), of one outcome or all. */
  count(operation?: string, outcome?: CallOutcome): number {
    let total = 0;
    for (const [op, entry] of this.counts) {
      if (operation !== undefined && op !== operation) continue;
      total += outcome ? entry[outcome] : entry.ok + entry.throttled + entry.error;
    }
    return total;
  }

  /** A copy, for metrics and test messages: `{ AttachVolume: { ok: 1, throttled: 0, error: 0 } }`. */
  snapshot(): Record<string, Record<CallOutcome, number>> {
    return Object.fromEntries([...this.counts].map(([op, entry]) => [op, { ...entry }]));
  }

  reset(): void {
    this.counts.clear();
  }
}
