/**
 * Counters of a role, named the way the metrics endpoint exports them:
 * `name{label="value"}`. Cheap enough to bump on every control message.
 *
 * @module
 */

/** Label values of one counter series. */
export type Labels = Readonly<Record<string, string>>;

function seriesKey(name: string, labels?: Labels): string {
  if (labels === undefined) return name;
  const parts = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

/** A set of monotonically increasing counters and current-value gauges. */
export class Counters {
  readonly #values = new Map<string, number>();
  readonly #gauges = new Map<string, () => number>();

  /** Adds `by` (default 1) to the series `name{labels}`. */
  inc(name: string, labels?: Labels, by = 1): void {
    const k = seriesKey(name, labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  /** The current value of a series (0 if never bumped). */
  get(name: string, labels?: Labels): number {
    const k = seriesKey(name, labels);
    const g = this.#gauges.get(k);
    return g !== undefined ? g() : this.#values.get(k) ?? 0;
  }

  /** Registers a gauge read when the counters are listed. */
  gauge(name: string, read: () => number, labels?: Labels): void {
    this.#gauges.set(seriesKey(name, labels), read);
  }

  /** Every series and its value, sorted by key. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.#values) out[k] = v;
    for (const [k, g] of this.#gauges) out[k] = g();
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : 1));
  }
}
