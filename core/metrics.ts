export type StageOutcome = 'ok' | 'error';

/**
 * What the parts of the plugin that do long or rare work report (the cross-zone mover, the EBS
 * driver's attach and fencing). `noMetrics` stands in when metrics are off; the Prometheus registry
 * that implements it lives at the top, in `plugin/metrics.ts`.
 */
export interface WorkMetrics {
  /** One stage of a cross-zone move finished (`snapshot`, `restore`, `verify`, `retire`, …). */
  moveStage(stage: string, seconds: number, outcome: StageOutcome): void;
  /** An attachment started; call the returned function when it ended, whatever the outcome. */
  attachStarted(): () => void;
  /** Another instance's hold on a volume was broken (invariant 7). */
  fenced(): void;
}

export const noMetrics: WorkMetrics = {
  moveStage: () => undefined,
  attachStarted: () => () => undefined,
  fenced: () => undefined,
};
