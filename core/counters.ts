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

/** Most label names or values kept below one node of the series-key cache. */
const MAX_CACHED_CHILDREN = 1024;

/** A node of the series-key cache: label name, then its value, then the next name... */
interface KeyNode {
  key?: string;
  readonly next: Map<string, KeyNode>;
}

/** Series keys by metric name, then label names and values in the order given. */
const cachedKeys = new Map<string, KeyNode>();

function buildKey(name: string, labels: Labels): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}="${labels[k]}"`);
  return parts.length === 0 ? name : `${name}{${parts.join(",")}}`;
}

function child(node: KeyNode, part: string): KeyNode | undefined {
  let c = node.next.get(part);
  if (c === undefined && node.next.size < MAX_CACHED_CHILDREN) {
    node.next.set(part, c = { next: new Map() });
  }
  return c;
}

/**
 * `name{label="value",...}`, the labels sorted. Looked up, not built, for
 * label sets seen before (no arrays or strings made per bump); a series
 * with many label values (a peer's address) is built past
 * {@link MAX_CACHED_CHILDREN} of them.
 */
function seriesKey(name: string, labels?: Labels): string {
  if (labels === undefined) return name;
  let node = cachedKeys.get(name);
  if (node === undefined) cachedKeys.set(name, node = { next: new Map() });
  for (const k in labels) {
    const v = labels[k];
    if (typeof v !== "string") return buildKey(name, labels);
    const n = child(node, k);
    const m = n === undefined ? undefined : child(n, v);
    if (m === undefined) return buildKey(name, labels);
    node = m;
  }
  return node.key ??= buildKey(name, labels);
}

/** The series of a metric whose label values are only known when it is read. */
export type FamilyReader<L extends string> = () => Iterable<
  readonly [labels: LabelsOf<L>, value: number]
>;

/**
 * A set of monotonically increasing counters and current-value gauges.
 * Besides the series bumped here, a series may be read from elsewhere when
 * the counters are listed ({@link gauge}, {@link series}), and a whole
 * family whose label values change (one series per map-server, per remote
 * RLOC) may be listed by a reader ({@link family}).
 */
export class Counters {
  readonly #values = new Map<string, number>();
  readonly #gauges = new Map<string, () => number>();
  readonly #families = new Map<string, FamilyReader<string>>();
  readonly #addends = new Map<string, (() => number)[]>();

  /** Adds `by` (default 1) to the series of `metric` with `labels`. */
  inc<L extends string>(metric: Metric<L>, labels?: LabelsOf<L>, by = 1): void {
    const k = seriesKey(metric.name, labels as Labels | undefined);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  /** The current value of a series (0 if never bumped), by metric or exported name. */
  get(metric: Metric | string, labels?: Labels): number {
    const name = typeof metric === "string" ? metric : metric.name;
    const k = seriesKey(name, labels);
    const g = this.#gauges.get(k);
    if (g !== undefined) return g();
    const v = this.#values.get(k);
    const a = this.#addends.get(k);
    if (a !== undefined) return a.reduce((sum, read) => sum + read(), v ?? 0);
    if (v !== undefined) return v;
    const f = this.#families.get(name);
    if (f !== undefined) {
      for (const [l, x] of f()) if (seriesKey(name, l as Labels) === k) return x;
    }
    return 0;
  }

  /** Registers a gauge series of `metric`, read when the counters are listed. */
  gauge<L extends string>(metric: Metric<L>, read: () => number, labels?: LabelsOf<L>): void {
    this.series(metric, read, labels);
  }

  /**
   * Registers a series of `metric`, of either type, whose value is read
   * when the counters are listed: a gauge, or a counter kept elsewhere
   * (the data plane's, kept in its Worker).
   */
  series<L extends string>(metric: Metric<L>, read: () => number, labels?: LabelsOf<L>): void {
    this.#gauges.set(seriesKey(metric.name, labels as Labels | undefined), read);
  }

  /**
   * Registers a part of a counter series kept elsewhere (a Worker's count
   * in shared memory), added, when the counters are listed, to what is
   * bumped here for the same series.
   */
  addend<L extends string>(metric: Metric<L>, read: () => number, labels?: LabelsOf<L>): void {
    const k = seriesKey(metric.name, labels as Labels | undefined);
    const list = this.#addends.get(k);
    if (list === undefined) this.#addends.set(k, [read]);
    else list.push(read);
  }

  /**
   * Registers every series of `metric` as `read` lists them when the
   * counters are listed: for label values that come and go (one series
   * per map-server, per remote RLOC). Replaces an earlier reader of
   * `metric`.
   */
  family<L extends string>(metric: Metric<L>, read: FamilyReader<L>): void {
    this.#families.set(metric.name, read as FamilyReader<string>);
  }

  /** Every series and its value, sorted by key. */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of this.#values) out[k] = v;
    for (const [k, list] of this.#addends) {
      out[k] = list.reduce((sum, read) => sum + read(), this.#values.get(k) ?? 0);
    }
    for (const [k, g] of this.#gauges) out[k] = g();
    for (const [name, f] of this.#families) {
      for (const [l, v] of f()) out[seriesKey(name, l as Labels)] = v;
    }
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a < b ? -1 : 1));
  }
}
