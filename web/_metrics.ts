/**
 * Prometheus text exposition (format 0.0.4) of a role's counters.
 *
 * Series come from `Counters.snapshot()` keys, `name{label="value",...}`.
 * HELP and TYPE come from the metric's declaration in core/metrics.ts; an
 * undeclared name ending in `_total` is a counter, any other a gauge.
 * Names are kept when they are valid Prometheus
 * names starting with `oor_`; others get the `oor_` prefix and invalid
 * characters become `_`. Every family gets one `# HELP` and one `# TYPE`
 * line before its samples; label values are escaped.
 *
 * @module
 */

import { metricByName, PROCESS_METRICS } from "../core/metrics.ts";

/** Families the metrics add themselves; a counter of the same name is left out. */
const PROCESS_FAMILIES = new Set(Object.values(PROCESS_METRICS).map((m) => m.name));
const LABEL_OK = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** One parsed series key. */
interface Series {
  readonly name: string;
  readonly labels: ReadonlyArray<readonly [string, string]>;
}

/** Splits `name{a="x",b="y"}` into its name and labels (values as written). */
export function parseSeriesKey(key: string): Series {
  const brace = key.indexOf("{");
  if (brace < 0 || !key.endsWith("}")) return { name: key, labels: [] };
  const name = key.slice(0, brace);
  const body = key.slice(brace + 1, -1);
  const labels: [string, string][] = [];
  // Values are written unescaped by Counters: a value ends at `"` followed
  // by `,` and a label name and `=`, or by the end.
  const re = /([a-zA-Z_][a-zA-Z0-9_]*)="(.*?)"(?=,[a-zA-Z_][a-zA-Z0-9_]*="|$)/gs;
  for (const m of body.matchAll(re)) labels.push([m[1]!, m[2]!]);
  return { name, labels };
}

/** The exported name of a counter key's name. */
export function metricName(name: string): string {
  const n = name.replace(/[^a-zA-Z0-9_:]/g, "_");
  return n.startsWith("oor_") ? n : `oor_${n}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function formatLabels(labels: ReadonlyArray<readonly [string, string]>): string {
  if (labels.length === 0) return "";
  const parts = labels.map(([k, v]) => {
    const name = LABEL_OK.test(k) ? k : `_${k.replace(/[^a-zA-Z0-9_]/g, "_")}`;
    return `${name}="${escapeLabel(v)}"`;
  });
  return `{${parts.join(",")}}`;
}

/** One family to write: a name, its type and samples. */
interface Family {
  readonly type: "counter" | "gauge";
  readonly help: string;
  readonly samples: string[];
}

/** What the process part of the metrics needs. */
export interface ProcessInfo {
  /** Role name (`ms`, `xtr`...). */
  readonly role: string;
  /** oor version. */
  readonly version: string;
  /** Start time, ms since the epoch. */
  readonly startedAt: number;
  /** Now, ms since the epoch. */
  readonly now: number;
  /** Resident set size in bytes, when known. */
  readonly rssBytes?: number;
}

/** The whole `/metrics` body: the process families, then one family per counter name. */
export function renderMetrics(
  snapshot: Readonly<Record<string, number>>,
  proc: ProcessInfo,
): string {
  const families = new Map<string, Family>();
  const add = (name: string, type: Family["type"], help: string, sample: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { type, help, samples: [] };
      families.set(name, f);
    }
    f.samples.push(sample);
  };
  const P = PROCESS_METRICS;
  add(
    P.buildInfo.name,
    P.buildInfo.type,
    P.buildInfo.help,
    `oor_build_info${formatLabels([["role", proc.role], ["version", proc.version]])} 1`,
  );
  add(
    P.startTime.name,
    P.startTime.type,
    P.startTime.help,
    `oor_process_start_time_seconds ${proc.startedAt / 1000}`,
  );
  add(
    P.uptime.name,
    P.uptime.type,
    P.uptime.help,
    `oor_process_uptime_seconds ${Math.max(0, (proc.now - proc.startedAt) / 1000)}`,
  );
  if (proc.rssBytes !== undefined) {
    add(
      P.residentMemory.name,
      P.residentMemory.type,
      P.residentMemory.help,
      `oor_process_resident_memory_bytes ${proc.rssBytes}`,
    );
  }
  for (const [key, value] of Object.entries(snapshot)) {
    const s = parseSeriesKey(key);
    const name = metricName(s.name);
    if (PROCESS_FAMILIES.has(name)) continue;
    const declared = metricByName(name);
    const type = declared?.type ?? (name.endsWith("_total") ? "counter" : "gauge");
    add(
      name,
      type,
      declared?.help ?? `oor ${type} ${name}.`,
      `${name}${formatLabels(s.labels)} ${formatValue(value)}`,
    );
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.samples);
  }
  return out.join("\n") + "\n";
}
