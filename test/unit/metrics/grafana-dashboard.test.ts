/**
 * docs/grafana-dashboard.json against the metrics the plugin exports (issue 18 item 15): every
 * query names a metric of the plugin's registry and only labels that metric has, so a renamed
 * metric cannot leave a silent panel behind.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Metrics } from '../../../plugin/metrics.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface Dashboard {
  panels: { title: string; targets: { expr: string }[] }[];
  templating: { list: { query: string }[] };
}

const dashboard = JSON.parse(readFileSync(path.join(REPO, 'docs/grafana-dashboard.json'), 'utf8')) as Dashboard;

/** Every series name the registry exports (histograms as _bucket, _count, _sum), with its labels. */
async function exported(): Promise<Map<string, Set<string>>> {
  const metrics = new Metrics();
  const series = new Map<string, Set<string>>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    // Prometheus adds instance and job when it scrapes.
    const labels = new Set(['instance', 'job']);
    const names = m.type.toString() === 'histogram' ? ['_bucket', '_count', '_sum'].map((s) => m.name + s) : [m.name];
    for (const name of names) series.set(name, name.endsWith('_bucket') ? new Set([...labels, 'le']) : labels);
  }
  // prom-client's JSON leaves labelNames out: read them from the metric objects.
  for (const name of series.keys()) {
    const base = metrics.registry.getSingleMetric(name.replace(/_(bucket|count|sum)$/, '')) ?? metrics.registry.getSingleMetric(name);
    const labelNames = (base as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
    for (const l of labelNames) series.get(name)!.add(l);
  }
  return series;
}

const queries = [...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: p.title, expr: t.expr }))), ...dashboard.templating.list.map((v) => ({ where: 'variable', expr: v.query }))];

test('the dashboard has panels for mounts, AWS calls and throttling, moves, fences and attachments', () => {
  const all = queries.map((q) => q.expr).join('\n');
  for (const metric of ['stowage_request_duration_seconds', 'stowage_aws_calls_total', 'stowage_aws_retries_total', 'stowage_move_stage_duration_seconds', 'stowage_fences_total', 'stowage_attachments_in_flight', 'stowage_mounts_in_flight']) {
    expect(all).toContain(metric);
  }
  expect(all).toContain('outcome="throttled"');
});

test('every query names metrics the plugin exports, with labels those metrics have', async () => {
  const series = await exported();
  for (const { where, expr } of queries) {
    const names = [...expr.matchAll(/\bstowage_[a-z_]+\b/g)].map((m) => m[0]);
    expect([where, names.length > 0]).toEqual([where, true]);
    for (const name of names) {
      expect([where, name, series.has(name)]).toEqual([where, name, true]);
      const labels = [...expr.matchAll(/(?:by \(([^)]*)\))|(?:\{([^}]*)\})/g)].flatMap((m) =>
        m[1] !== undefined ? m[1].split(',').map((l) => l.trim()) : m[2]!.split(',').map((kv) => kv.split(/=~?|!=/)[0]!.trim()),
      );
      for (const label of labels.filter((l) => l !== '')) expect([where, name, label, series.get(name)!.has(label)]).toEqual([where, name, label, true]);
    }
  }
});
