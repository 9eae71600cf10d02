/**
 * Counters of a role, named the way the metrics endpoint exports them:
 * `name{label="value"}`. Series are counted through the declared metrics
 * of core/metrics.ts, so only declared labels can be set. Cheap enough to
 * bump on every control message.
 *
 * @module
 */

import type { Metric } from "./metrics.ts";

/** Label values of one counter series. */
export type Labels = Readonly<Record<string, string>>;

/** Label values of a series of a metric with label names `L`. */
export type LabelsOf<L extends string> = { readonly [K in L]?: string };

function seriesKey(name: string, labels?: Labels): string {
  if (labels === undefined) return name;
  const parts = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

/** A set of monotonically increasing counters and current-value gauges. */
export class Counters {
  readonly #values = new Map<string, number>();
  readonly #gauges = new Map<string, () => number>();

  /** Adds `by` (default 1) to the series of `metric` with `labels`. */
  inc<L extends string>(metric: Metric<L>, labels?: LabelsOf<L>, by = 1): void {
    const k = seriesKey(metric.name, labels as Labels | undefined);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  /** The current value of a series (0 if never bumped), by metric or exported name. */
  get(metric: Metric | string, labels?: Labels): number {
    const k = seriesKey(typeof metric === "string" ? metric : metric.name, labels);
    const g = this.#gauges.get(k);
    return g !== undefined ? g() : this.#values.get(k) ?? 0;
  }

  /** Registers a gauge series of `metric`, read when the counters are listed. */
  gauge<L extends string>(metric: Metric<L>, read: () => number, labels?: LabelsOf<L>): void {
    this.#gauges.set(seriesKey(metric.name, labels as Labels | undefined), read);
  }

  /** Every series and its value, sorted by key. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.#values) out[k] = v;
    for (const [k, g] of this.#gauges) out[k] = g();
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : 1));
  }
}
