/**
 * `deno task bench:control`: control-plane throughput of the map-server.
 *
 * Starts an ms on 127.0.0.1 (an ephemeral port) with one `[[lisp-site]]`
 * for 10.0.0.0/8 (key type 2, accept-more-specifics, proxy-reply, no rate
 * limit), then runs scripts/_loadgen.ts in its own process against it:
 * authenticated Map-Registers for distinct /24s (counted when their
 * Map-Notify comes back), then ECM Map-Requests for hosts in them, each
 * phase `--duration` seconds with a bounded window of outstanding
 * messages. Prints registrations/s, Map-Requests answered/s, loss, median
 * and p99 latency, the CPU share each process used, and the map-server's
 * drop counters; the last line is the same as one JSON object.
 *
 * ```
 * deno task bench:control [--duration S] [--window N] [--prefixes N] [--transport-only]
 * ```
 *
 * `--transport-only` replaces the ms with a minimal responder built on the
 * same ControlPlane and codecs (verify, store in a Map, answer): the ceiling
 * the transport allows, to compare the ms against.
 *
 * The window defaults to 128 outstanding messages. The ms's socket keeps
 * the kernel's default receive buffer (net.core.rmem_default, 208 KiB:
 * about 190 small datagrams at loopback truesize; Deno's node:dgram
 * `setRecvBufferSize` does not change SO_RCVBUF), so a window above ~190
 * overflows it whenever the ms pauses (GC) and shows as loss, counted by
 * the kernel in `RcvbufErrors` of /proc/net/snmp, not by the ms.
 *
 * Where the ms spends its time: `deno run -A --cpu-prof --cpu-prof-dir=DIR
 * scripts/bench_control.ts` profiles this process, i.e. the ms (the load
 * generator runs in its child). The "ms cpu per message" figure (CPU time
 * of the ms divided by answers) is steadier than the rates when other
 * processes share the two cores.
 *
 * Goal on a 2-core machine (issue 3): ≥ 20,000 Map-Requests answered per
 * second with no loss and ≥ 5,000 authenticated registrations per second.
 * Traffic goes to 127.0.0.1 only.
 *
 * @module
 */

import process from "node:process";
import { parseArgs } from "node:util";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import type { Metric } from "../core/metrics.ts";
import { Logger } from "../core/log.ts";
import { startMs } from "../roles/ms.ts";
import { type Config, parseConfig } from "../config/mod.ts";
import { authStatus, HmacKey, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import { type EidRecord } from "../wire/eid_record.ts";
import { emitMapReply } from "../wire/map_reply.ts";
import { emitSignedMapNotify } from "../wire/map_notify.ts";
import type { PhaseResult } from "./_loadgen.ts";

/** Longest phase allowed, seconds. */
const MAX_DURATION_S = 30;
const KEY = "bench-key";
const SITE = "10.0.0.0/8";

function msConfig(rateLimitKey: boolean): string {
  return [
    `operating-mode = "MS"`,
    `control-address = "127.0.0.1"`,
    `control-port = 0`,
    ...(rateLimitKey ? [`control-rate-limit = 0`] : []),
    ``,
    `[[lisp-site]]`,
    `eid-prefix = "${SITE}"`,
    `iid = 0`,
    `key-type = 2`,
    `key = "${KEY}"`,
    `accept-more-specifics = true`,
    `proxy-reply = true`,
    ``,
  ].join("\n");
}

/** The ms config; without `control-rate-limit` if this build does not know the key. */
function loadConfig(): Config {
  let r = parseConfig(msConfig(true), { role: "ms", file: "bench-ms.toml" });
  if (!r.ok && r.errors.some((e) => String(e).includes("control-rate-limit"))) {
    r = parseConfig(msConfig(false), { role: "ms", file: "bench-ms.toml" });
  }
  if (!r.ok) throw new Error(`bench config rejected:\n${r.errors.join("\n")}`);
  return r.config;
}

/** A running map-server (or stand-in) on 127.0.0.1. */
interface Target {
  readonly port: number;
  readonly counters: Counters;
  close(): Promise<void>;
}

/** The bench's own series, beside the ms's. */
const BENCH_LOG_LINES: Metric = {
  name: "bench_log_lines",
  type: "gauge",
  help: "Log lines the ms wrote during the run.",
  labels: [],
};
const BENCH_AUTH_FAILURES: Metric = {
  name: "bench_auth_failures_total",
  type: "counter",
  help: "Map-Registers the transport-only target could not authenticate.",
  labels: [],
};

async function startRealMs(): Promise<Target> {
  const config = loadConfig();
  const counters = new Counters();
  let lines = 0;
  const logger = new Logger({
    role: "ms",
    level: "info",
    sink: { write: () => void lines++ },
  });
  counters.gauge(BENCH_LOG_LINES, () => lines);
  const handle = await startMs(config, { logger, counters, now: Date.now });
  return { port: handle.port, counters, close: () => handle.close() };
}

/**
 * The transport ceiling: ControlPlane + codecs + HMAC, no ms logic beyond
 * an exact-match Map of the registered /24s.
 */
async function startTransportOnly(): Promise<Target> {
  const counters = new Counters();
  const logger = new Logger({ role: "bench-ms", level: "error", sink: { write: () => {} } });
  const cp = await ControlPlane.open({ logger, counters, address: "127.0.0.1", port: 0 });
  const key = new HmacKey(KEY_ID_HMAC_SHA256_128, KEY);
  const table = new Map<string, EidRecord>();
  cp.on("map-register", (m, r) => {
    if (authStatus(r.bytes, key) !== "ok") {
      counters.inc(BENCH_AUTH_FAILURES);
      return;
    }
    for (const rec of m.records) {
      if (rec.eid.kind === "ipv4") table.set(`${rec.eid.ip}/${rec.maskLen}`, rec);
    }
    if (m.wantMapNotify) {
      cp.send(
        emitSignedMapNotify({
          ack: false,
          xtrIdPresent: m.xtrIdPresent,
          rtrAuthPresent: false,
          nonce: m.nonce,
          keyId: m.keyId,
          authData: new Uint8Array(0),
          records: m.records,
          ...(m.xtrIdPresent ? { xtrId: m.xtrId!, siteId: m.siteId! } : {}),
        }, key),
        r.from,
      );
    }
  });
  cp.on("map-request", (m, r) => {
    if (r.ecm === undefined) return;
    const q = m.records[0];
    const itr = m.itrRlocs[0];
    if (q === undefined || itr === undefined || itr.kind !== "ipv4") return;
    const ip = q.eid.kind === "ipv4" ? q.eid.ip : "";
    const rec = table.get(`${ip.slice(0, ip.lastIndexOf("."))}.0/24`);
    const records: EidRecord[] = rec !== undefined ? [rec] : [{
      ttl: 15,
      maskLen: 8,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: { kind: "ipv4", ip: "10.0.0.0" },
      locators: [],
    }];
    cp.send(
      emitMapReply({ probe: false, echoNonce: false, security: false, nonce: m.nonce, records }),
      { address: itr.ip, port: r.ecm.inner.srcPort },
    );
  });
  return {
    port: cp.port,
    counters,
    close: () => {
      cp.close();
      return Promise.resolve();
    },
  };
}

/** Splits a text stream into lines. */
function lineSplitter(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream<string, string>({
    transform(chunk, ctl) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const p of parts) ctl.enqueue(p);
    },
    flush(ctl) {
      if (rest !== "") ctl.enqueue(rest);
    },
  });
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      duration: { type: "string", default: "5" },
      window: { type: "string", default: "128" },
      prefixes: { type: "string", default: "65536" },
      drain: { type: "string", default: "1" },
      "transport-only": { type: "boolean", default: false },
    },
  });
  const duration = Number(values.duration);
  if (!(duration > 0 && duration <= MAX_DURATION_S)) {
    console.error(`--duration must be above 0 and at most ${MAX_DURATION_S} seconds`);
    return 2;
  }
  const window = Number(values.window);
  if (!(Number.isInteger(window) && window >= 1 && window <= 4096)) {
    console.error("--window must be an integer from 1 to 4096");
    return 2;
  }
  const mode = values["transport-only"] ? "transport-only" : "ms";
  const target = mode === "ms" ? await startRealMs() : await startTransportOnly();
  let gen: PhaseResult | undefined;
  let result: Record<string, unknown>;
  try {
    const t0 = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        new URL("./_loadgen.ts", import.meta.url).pathname,
        "--port",
        String(target.port),
        "--duration",
        String(duration),
        "--window",
        String(window),
        "--prefixes",
        values.prefixes,
        "--drain",
        values.drain,
        "--key",
        KEY,
        "--site",
        SITE,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1" },
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    // The load generator prints "mark start PHASE" / "mark stop PHASE" when
    // it starts and stops sending: sample our (the ms's) CPU time there.
    const cpuShare: Record<string, number> = {};
    const startedAt = new Map<string, { cpu: NodeJS.CpuUsage; at: number }>();
    let last = "";
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(lineSplitter());
    for await (const line of lines) {
      const m = /^mark (start|stop) (\w+)$/.exec(line);
      if (m === null) {
        if (line.trim() !== "") last = line;
        continue;
      }
      const [, what, phase] = m as unknown as [string, string, string];
      if (what === "start") {
        startedAt.set(phase, { cpu: process.cpuUsage(), at: performance.now() });
      } else {
        const s = startedAt.get(phase);
        if (s === undefined) continue;
        const c = process.cpuUsage(s.cpu);
        cpuShare[phase] =
          Math.round((c.user + c.system) / 1000 / (performance.now() - s.at) * 100) /
          100;
      }
    }
    const status = await child.status;
    if (!status.success || last === "") {
      console.error(`load generator failed (exit ${status.code})`);
      return 1;
    }
    result = JSON.parse(last) as Record<string, unknown>;
    result["wallSeconds"] = Math.round(performance.now() - t0) / 1000;
    result["mode"] = mode;
    // CPU of this process (the ms) while the load generator was sending.
    result["msCpu"] = cpuShare;
    const drops: Record<string, number> = {};
    for (const [k, v] of Object.entries(target.counters.snapshot())) {
      if (/dropped|error|fail|reject|bench_/.test(k) && v > 0) drops[k] = v;
    }
    result["msCounters"] = drops;
    gen = result["requests"] as PhaseResult | undefined;
  } finally {
    await target.close();
  }
  const reg = result["registrations"] as PhaseResult | undefined;
  console.log(`control-plane benchmark (${mode}), window ${window}, ${duration} s per phase`);
  if (reg !== undefined) {
    console.log(
      `  registrations: ${fmt(reg.perSecond)}/s notified (${fmt(reg.answered)} of ${
        fmt(reg.sent)
      } sent, loss ${fmt(reg.lost)}), latency median ${reg.medianMs} ms, p99 ${reg.p99Ms} ms`,
    );
  }
  if (gen !== undefined) {
    console.log(
      `  map-requests:  ${fmt(gen.perSecond)}/s answered (${fmt(gen.answered)} of ${
        fmt(gen.sent)
      } sent, ${fmt(gen.positive ?? 0)} positive, loss ${
        fmt(gen.lost)
      }), latency median ${gen.medianMs} ms, p99 ${gen.p99Ms} ms`,
    );
  }
  const msCpu = result["msCpu"] as Record<string, number>;
  // CPU time the ms spent per answered message: steadier than the rates
  // when other processes compete for the two cores.
  const perMessage = (cores: number | undefined, p: PhaseResult | undefined) =>
    cores !== undefined && p !== undefined && p.perSecond > 0
      ? Math.round(cores * 1e6 / p.perSecond * 10) / 10
      : undefined;
  const usReg = perMessage(msCpu["registrations"], reg);
  const usReq = perMessage(msCpu["requests"], gen);
  result["msCpuMicrosPerMessage"] = {
    ...(usReg !== undefined ? { registrations: usReg } : {}),
    ...(usReq !== undefined ? { requests: usReq } : {}),
  };
  console.log(
    `  cpu (cores): ms ${msCpu["registrations"] ?? "-"} (reg) / ${
      msCpu["requests"] ?? "-"
    } (req), load generator ${reg?.loadgenCpu ?? "-"} (reg) / ${
      gen?.loadgenCpu ?? "-"
    } (req); ms cpu per message ${usReg ?? "-"} µs (reg) / ${usReq ?? "-"} µs (req)`,
  );
  console.log(`  ms counters: ${JSON.stringify(result["msCounters"])}`);
  console.log(JSON.stringify(result));
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main());
}
