/**
 * bench:control's bookkeeping without running anything: the configurations
 * it gives both map-servers, the best round of each phase, the ratios
 * ours/OOR and the table. (tests/e2e/bench_control_test.ts runs it.)
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  benchNetwork,
  type BenchResult,
  bestOf,
  formatTable,
  oorConfig,
  oursConfig,
  ratios,
  RESOLVED_SITE,
  resolverConfig,
  resolverDdtConfig,
  resolverMsConfig,
  type ServerName,
  type ServerRun,
  SITES,
} from "./bench_control.ts";
import type { LoadgenResult, PhaseResult } from "./_loadgen.ts";
import { parseConfig } from "../config/mod.ts";

function phase(perSecond: number, cpuUs: number): PhaseResult {
  return {
    sent: perSecond,
    answered: perSecond,
    answeredInTime: perSecond,
    late: 0,
    lost: 0,
    perSecond,
    sentPerSecond: perSecond,
    medianMs: 1000 / perSecond,
    p99Ms: 3000 / perSecond,
    maxMs: 5000 / perSecond,
    positive: 0,
    stray: 0,
    other: {},
    sendFull: 0,
    sendErrors: 0,
    sendBatch: 1,
    recvBatch: 1,
    loadgenCpu: 0.5,
    loadgenCpuMicrosPerMessage: 5,
    serverCpu: cpuUs * perSecond / 1e6,
    serverCpuMicrosPerMessage: cpuUs,
    machineBusy: 1.5,
    softirqCpu: 0.2,
    otherCpu: 0,
    generatorLimited: false,
    machineLimited: false,
    contended: false,
    seconds: 1,
  };
}

function load(phases: LoadgenResult["phases"]): LoadgenResult {
  return {
    mode: "closed",
    window: 128,
    rate: 0,
    workers: 1,
    batch: 64,
    seconds: 1,
    warmupSeconds: 0,
    prefixes: 1024,
    buildSeconds: 0.1,
    cores: 2,
    phases,
  };
}

function run(server: ServerName, round: number, phases: LoadgenResult["phases"]): ServerRun {
  return { server, round, what: server, load: load(phases), logLines: round };
}

Deno.test("bestOf() keeps, per server and phase, the round that answered the most per second", () => {
  const rounds = [
    run("ours", 1, { negative: phase(30_000, 30), "register-kt1": phase(20_000, 50) }),
    run("oor", 1, { negative: phase(90_000, 10), "register-kt1": { error: "boom" } }),
    run("oor", 2, { negative: phase(80_000, 11), "register-kt1": phase(40_000, 20) }),
    run("ours", 2, { negative: phase(35_000, 28), "register-kt1": phase(10_000, 60) }),
  ];
  const best = bestOf(rounds);
  assert.deepEqual(best.map((r) => [r.server, r.round]), [["ours", 2], ["oor", 2]]);
  const ours = best[0]!.load!.phases;
  const oor = best[1]!.load!.phases;
  assert.equal((ours.negative as PhaseResult).perSecond, 35_000);
  assert.equal((ours["register-kt1"] as PhaseResult).perSecond, 20_000);
  assert.equal((oor.negative as PhaseResult).perSecond, 90_000);
  assert.equal(
    (oor["register-kt1"] as PhaseResult).perSecond,
    40_000,
    "an error loses to a result",
  );
  assert.equal(best[0]!.logLines, 2);

  const r = ratios(best);
  assert.deepEqual(r.negative, {
    perSecond: 0.39,
    medianMs: 2.57,
    p99Ms: 2.57,
    serverCpuMicrosPerMessage: 2.8,
  });
  assert.equal(r["register-kt1"]!.perSecond, 0.5);
  assert.equal(r.positive, undefined, "no ratio for a phase only one of them ran");
});

Deno.test("bestOf() keeps a server whose every round failed, with its error", () => {
  const failed: ServerRun = { server: "oor", round: 1, what: "oor", error: "no oor", logLines: 0 };
  const best = bestOf([failed, { ...failed, round: 2 }]);
  assert.equal(best.length, 1);
  assert.equal(best[0]!.error, "no oor");
  assert.equal(best[0]!.round, 2);
});

Deno.test("formatTable() shows each phase with a row per server and ours/oor", () => {
  const runs = [
    run("ours", 1, { negative: phase(30_000, 30), "register-kt2": phase(15_000, 60) }),
    run("oor", 1, { negative: phase(90_000, 10) }),
  ];
  const result: BenchResult = {
    bench: "control",
    settings: {
      servers: ["ours", "oor"],
      seconds: 1,
      warmup: 0,
      drain: 1,
      window: 128,
      rate: 0,
      workers: 1,
      batch: 64,
      prefixes: 1024,
      repeat: 1,
    },
    runs,
    rounds: runs,
    ratios: ratios(runs),
    interrupted: false,
  };
  const text = formatTable(result).join("\n");
  assert.match(text, /closed loop, window 128/);
  assert.match(text, /\n {2}ours +30,000 +0 +0\.033/);
  assert.match(text, /\n {2}oor +90,000/);
  assert.match(text, /\n {2}ours\/oor +0\.33 .* 3\.00/);
  assert.match(text, /OOR 1\.3\.0 has key type 1 only/);
});

Deno.test("oursConfig() is a valid ms config with the three sites and their key types", () => {
  const r = parseConfig(oursConfig(16384), { role: "ms", file: "bench.toml" });
  assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
  if (!r.ok) return;
  const sites = r.config.lispSites.map((s) => [s.keyType, s.key]);
  assert.deepEqual(sites, [
    [1, SITES.kt1.key],
    [2, SITES.kt2.key],
    [1, SITES.negative.key],
  ]);
  assert.ok(r.config.lispSites.every((s) => s.maxRegistrations >= 16384));
  assert.equal(r.config.controlRateLimit, 0);
});

Deno.test("oorConfig() gives OOR the key-type-1 sites only, logging off", () => {
  const c = oorConfig();
  assert.match(c, /^debug = 0$/m);
  assert.match(c, /^control-iface = lo$/m);
  assert.equal(c.match(/lisp-site \{/g)?.length, 2);
  assert.ok(!c.includes(SITES.kt2.prefix));
  assert.ok(!/key-type = 2/.test(c));
});

Deno.test("formatTable() shows the map-resolvers apart, under resolve, with their own CPU", () => {
  const runs = [
    run("ours", 1, { negative: phase(200_000, 4) }),
    run("mr", 1, { negative: phase(52_000, 14) }),
    run("ddt-mr", 1, { negative: phase(21_000, 40) }),
  ];
  const result: BenchResult = {
    bench: "control",
    settings: {
      servers: ["ours", "mr", "ddt-mr"],
      seconds: 1,
      warmup: 0,
      drain: 1,
      window: 128,
      rate: 0,
      workers: 1,
      batch: 64,
      prefixes: 1024,
      repeat: 1,
    },
    runs,
    rounds: runs,
    ratios: ratios(runs),
    interrupted: false,
  };
  const text = formatTable(result).join("\n");
  const [, ms, resolve] = text.split(
    /\nnegative Map-Requests \(negative\)|\nMap-Requests passed on by a map-resolver/,
  );
  assert.ok(ms !== undefined && resolve !== undefined, text);
  assert.match(ms!, /\n {2}ours +200,000/);
  assert.doesNotMatch(ms!, /\n {2}(mr|ddt-mr) /);
  assert.match(resolve, /\n {2}mr +52,000 .* 14\.0/);
  assert.match(resolve, /\n {2}ddt-mr +21,000 .* 40\.0/);
});

Deno.test("the map-resolvers' ms, DDT root, mr and ddt-mr configs are valid and point at each other", () => {
  const parse = (text: string, role: "ms" | "ddt" | "mr" | "ddt-mr") => {
    const r = parseConfig(text, { role, file: `${role}.toml` });
    assert.ok(r.ok, r.ok ? "" : r.errors.join("\n"));
    return r.config;
  };
  const ms = parse(resolverMsConfig(), "ms");
  const ddt = parse(resolverDdtConfig(), "ddt");
  const mr = parse(resolverConfig("mr"), "mr");
  const ddtMr = parse(resolverConfig("ddt-mr"), "ddt-mr");
  assert.equal(ms.lispSites[0]!.proxyReply, true);
  assert.deepEqual(mr.mapServers.map((m) => m.address), [ms.controlAddress]);
  assert.deepEqual(ddtMr.ddtRootAddresses, [ddt.controlAddress]);
  assert.deepEqual(ddt.ddtDelegSites[0]!.delegNodes, [ms.controlAddress]);
  for (const c of [ms, ddt, mr, ddtMr]) assert.equal(c.controlRateLimit, 0);
  assert.match(resolverMsConfig(), new RegExp(`eid-prefix = "${RESOLVED_SITE}"`));
  // The resolver and the generator in one namespace, the ms and the root behind a veth.
  const net = benchNetwork(["ours", "ddt-mr"]);
  assert.deepEqual(net.nodes.map((n) => n.name), ["ours", "ddtmr", "ddtmrb"]);
  assert.equal(net.links.length, 1);
  assert.deepEqual(net.links[0]!.b.addresses, [
    `${ms.controlAddress}/24`,
    `${ddt.controlAddress}/24`,
  ]);
  assert.deepEqual(net.links[0]!.a.addresses, [`${ddtMr.controlAddress}/24`]);
});
