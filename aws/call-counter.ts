export type CallOutcome = 'ok' | 'throttled' | 'error';

/** Every AWS request sent, per operation and outcome; tests assert on it, metrics export it. */
export class CallCounter {
  private readonly counts = new Map<string, Record<CallOutcome, number>>();

  record(operation: string, outcome: CallOutcome): void {
    let entry = this.counts.get(operation);
    if (!entry) {
      entry = { ok: 0, throttled: 0, error: 0 };
      this.counts.set(operation, entry);
    }
    entry[outcome] += 1;
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
