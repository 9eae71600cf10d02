/**
 * Prometheus text exposition (format 0.0.4) of a role's counters.
 *
 * Series come from `Counters.snapshot()` keys, `name{label="value",...}`.
 * A name ending in `_total` is a counter, any other a gauge (the naming
 * rule every role follows). Names are kept when they are valid Prometheus
 * names starting with `oor_`; others get the `oor_` prefix and invalid
 * characters become `_`. Every family gets one `# HELP` and one `# TYPE`
 * line before its samples; label values are escaped.
 *
 * @module
 */

/** HELP text of the families the roles export; others get a generic one. */
const HELP: Readonly<Record<string, string>> = {
  oor_control_messages_in_total: "Control messages received, by type.",
  oor_control_messages_out_total: "Control messages sent, by type.",
  oor_control_dropped_total: "Control datagrams dropped, by reason.",
  oor_control_retransmits_total: "Control messages sent again after no answer.",
  oor_control_send_errors_total: "Control messages the socket refused to send.",
  oor_control_timeouts_total: "Control requests that got no answer.",
  oor_ms_registrations: "Live registrations on the map-server, by source.",
  oor_ms_sites: "Configured lisp-sites.",
  oor_ms_registers_accepted_total: "Map-Registers accepted.",
  oor_ms_register_rejected_total: "Map-Registers rejected, by reason (auth failures included).",
  oor_ms_registrations_withdrawn_total: "Registrations withdrawn with TTL 0.",
  oor_ms_registrations_expired_total: "Registrations that expired without a refresh.",
  oor_ms_map_notifies_sent_total: "Map-Notifies sent to ETRs.",
  oor_ms_map_notify_acks_total: "Map-Notify-Acks received, by result.",
  oor_ms_map_requests_answered_total: "Map-Requests answered, by kind of answer.",
  oor_ms_map_referrals_sent_total: "Map-Referrals sent to DDT map-resolvers, by action.",
  oor_ms_map_requests_dropped_total: "Map-Requests dropped, by reason.",
  oor_mr_referral_cache_entries: "Entries in the map-resolver's referral cache.",
  oor_mr_pending_requests: "Map-Requests being resolved.",
  oor_mr_requests_total: "Map-Requests received from ITRs.",
  oor_mr_resolutions_total: "Resolutions finished, by result.",
  oor_mr_dropped_total: "Map-Requests dropped, by reason.",
  oor_ddt_requests_total: "Map-Requests received by the DDT node, by kind.",
  oor_ddt_referrals_total: "Map-Referrals sent by the DDT node, by action.",
  oor_ddt_dropped_total: "Map-Requests dropped by the DDT node, by reason.",
  oor_tr_map_cache_entries: "Map-cache entries.",
  oor_tr_locators_down: "Local locators that are down.",
  oor_tr_registered: "Map-servers whose last Map-Register was acknowledged.",
};

/** Families the metrics add themselves; a counter of the same name is left out. */
const PROCESS_FAMILIES = new Set([
  "oor_build_info",
  "oor_process_start_time_seconds",
  "oor_process_uptime_seconds",
  "oor_process_resident_memory_bytes",
]);
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
  add(
    "oor_build_info",
    "gauge",
    "Always 1; the labels say which role and version run.",
    `oor_build_info${formatLabels([["role", proc.role], ["version", proc.version]])} 1`,
  );
  add(
    "oor_process_start_time_seconds",
    "gauge",
    "Start time of the role since the Unix epoch, seconds.",
    `oor_process_start_time_seconds ${proc.startedAt / 1000}`,
  );
  add(
    "oor_process_uptime_seconds",
    "gauge",
    "Seconds since the role started.",
    `oor_process_uptime_seconds ${Math.max(0, (proc.now - proc.startedAt) / 1000)}`,
  );
  if (proc.rssBytes !== undefined) {
    add(
      "oor_process_resident_memory_bytes",
      "gauge",
      "Resident memory of the process, bytes.",
      `oor_process_resident_memory_bytes ${proc.rssBytes}`,
    );
  }
  for (const [key, value] of Object.entries(snapshot)) {
    const s = parseSeriesKey(key);
    const name = metricName(s.name);
    if (PROCESS_FAMILIES.has(name)) continue;
    const type = name.endsWith("_total") ? "counter" : "gauge";
    add(
      name,
      type,
      HELP[name] ?? `oor ${type} ${name}.`,
      `${name}${formatLabels(s.labels)} ${formatValue(value)}`,
    );
  }
  const out: string[] = [];
  for (const [name, f] of families) {
    out.push(`# HELP ${name} ${escapeHelp(f.help)}`, `# TYPE ${name} ${f.type}`, ...f.samples);
  }
  return out.join("\n") + "\n";
}
