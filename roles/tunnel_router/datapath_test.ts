/**
 * Unit tests of the tunnel router's data path (datapath.ts) on a fake
 * platform and a fake Worker.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { formatPrefix, parsePrefix, type Prefix } from "../../core/prefix.ts";
import type {
  DataLocator,
  DataMapping,
  DataPlaneEvents,
  DataPlaneHandle,
} from "../../dataplane/api.ts";
import { type DataPlaneOptions, defaultTiming, type Env, type StartDataPlane } from "./context.ts";
import { flowSpreadFilter } from "../../dataplane/spread.ts";
import { DataPath } from "./datapath.ts";
import type { HostSetup } from "./host.ts";
import type { Platform } from "./platform.ts";

/** Records what the data path tells it. */
class RecordingWorker implements DataPlaneHandle {
  readonly calls: string[] = [];
  values: Record<string, number> = {};
  entries: Map<string, { packets: number; bytes: number }> | undefined;
  stopped = false;
  setMapping(m: DataMapping): void {
    this.calls.push(`set ${formatPrefix(m.prefix)}`);
  }
  deleteMapping(p: Prefix): void {
    this.calls.push(`delete ${formatPrefix(p)}`);
  }
  setLocal(prefixes: readonly Prefix[]): void {
    this.calls.push(`local ${prefixes.map(formatPrefix).join(",")}`);
  }
  setPetrs(_ipv4: readonly DataLocator[], _ipv6: readonly DataLocator[]): void {
    this.calls.push("petrs");
  }
  setLocator(address: string, up: boolean): void {
    this.calls.push(`locator ${address} ${up ? "up" : "down"}`);
  }
  counters(): Readonly<Record<string, number>> {
    return this.values;
  }
  entryCounts(): ReadonlyMap<string, { packets: number; bytes: number }> {
    return this.entries ?? new Map();
  }
  stop(): Promise<void> {
    this.stopped = true;
    return Promise.resolve();
  }
}

function prefix(text: string): Prefix {
  const p = parsePrefix(text, 0);
  if (p === undefined) throw new Error(text);
  return p;
}

Deno.test("DataPath hands the changes made while its Worker starts to that Worker once it runs", async () => {
  const r = parseConfig(
    [
      'operating-mode = "RTR"',
      'map-resolver = ["127.0.0.1"]',
      "[[rtr-iface]]",
      'iface = "lo"',
      "ip_version = 4",
    ].join("\n"),
    { role: "rtr" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const config = r.config;
  const env: Env = {
    config,
    log: new Logger({ role: "rtr", level: "error", sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
    nonce: () => 1n,
    peerPort: () => 4342,
    timing: defaultTiming(config),
    signal: new AbortController().signal,
  };
  const platform = {
    openUdp: () => ({ fd: 99, close: () => {} }),
  } as unknown as Platform;
  const host = {
    tunFd: -1,
    instanceTuns: [],
    pathMtu: { ipv4: 1500, ipv6: 1500 },
  } as unknown as HostSetup;
  const worker = new RecordingWorker();
  const started = Promise.withResolvers<void>();
  const start = async (_o: DataPlaneOptions, _e: DataPlaneEvents) => {
    await started.promise;
    return worker;
  };
  const data = new DataPath(env, platform, start, {
    mode: "rtr",
    host,
    bind: () => undefined,
    batch: 8,
    pollMs: 10,
  }, { onMiss: () => {} });
  const opening = data.open();
  // A Map-Notify installs an entry while the Worker is still starting.
  const m: DataMapping = { prefix: prefix("10.3.0.5/32"), action: "encapsulate", locators: [] };
  data.setMapping(m);
  data.setLocator("192.0.2.1", false);
  data.deleteMapping(prefix("10.9.0.0/24"));
  assert.deepEqual(worker.calls, [], "nothing reaches a Worker that is not running yet");
  started.resolve();
  await opening;
  assert.deepEqual(worker.calls, [
    "local ",
    "petrs",
    "set 10.3.0.5/32",
    "locator 192.0.2.1 down",
    "delete 10.9.0.0/24",
  ]);
  // Once it runs, changes go straight to it.
  data.setMapping({ ...m, prefix: prefix("10.4.0.0/24") });
  assert.equal(worker.calls.at(-1), "set 10.4.0.0/24");
  await data.close();
});

/** A Linux-like fake: multi-queue TUNs, reuse-port sockets and spreading, all recorded. */
class QueuePlatform {
  nextFd = 100;
  readonly open = new Set<number>();
  readonly log: string[] = [];
  /** Queues a TUN still takes (then EINVAL-like refusals). */
  queuesLeft = Infinity;
  #fd(what: string): { fd: number; close: () => void } {
    const fd = this.nextFd++;
    this.open.add(fd);
    this.log.push(`${what} ${fd}`);
    return { fd, close: () => this.open.delete(fd) };
  }
  openUdp(family: string, port: number, _address?: string, reusePort?: boolean) {
    return this.#fd(`udp ${family} ${port}${reusePort ? " reuseport" : ""}`);
  }
  openTunQueue(fd: number) {
    if (this.queuesLeft-- <= 0) throw new Error("TUNSETIFF: Invalid argument");
    return this.#fd(`queue of ${fd}`);
  }
  openRawIpv4() {
    return this.#fd("raw");
  }
  spreadUdp(fd: number, filter: Uint8Array) {
    this.log.push(`spread ${fd} ${filter.length / 8} insns`);
  }
}

function envOf(toml: string, role: "xtr" | "rtr", lines: string[] = []): Env {
  const r = parseConfig(toml, { role });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const config = r.config;
  return {
    config,
    log: new Logger({ role, level: "info", sink: { write: (l: string) => lines.push(l) } }),
    counters: new Counters(),
    now: Date.now,
    nonce: () => 1n,
    peerPort: () => 4342,
    timing: defaultTiming(config),
    signal: new AbortController().signal,
  };
}

const XTR = (workers: number) =>
  [
    'map-resolver = ["192.0.2.1"]',
    "[[map-server]]",
    'address = "192.0.2.2"',
    'key = "k"',
    "[[database-mapping]]",
    'eid-prefix = "10.1.0.0/24"',
    'rloc-address = [{ address = "198.51.100.1" }]',
    "[data-plane]",
    `workers = ${workers}`,
  ].join("\n");

const HOST = {
  tunFd: 3,
  instanceTuns: [{ fd: 4, iid: 7 }],
  pathMtu: { ipv4: 1500, ipv6: 1500 },
} as unknown as HostSetup;

function dataPathOf(env: Env, platform: QueuePlatform, start: StartDataPlane, mode: "xtr" | "rtr") {
  return new DataPath(env, platform as unknown as Platform, start, {
    mode,
    host: mode === "xtr" ? HOST : { ...HOST, tunFd: -1, instanceTuns: [] } as unknown as HostSetup,
    bind: () => undefined,
    batch: 8,
    pollMs: 10,
    ...(mode === "rtr" ? { natSourcePort: 4342 } : {}),
  }, { onMiss: () => {} });
}

Deno.test("DataPath with workers = 3 starts three Workers, each on its own TUN queues and reuse-port sockets, spread by flow", async () => {
  const platform = new QueuePlatform();
  const inits: DataPlaneOptions[] = [];
  const workers: RecordingWorker[] = [];
  const start = (o: DataPlaneOptions) => {
    inits.push(o);
    const w = new RecordingWorker();
    workers.push(w);
    return Promise.resolve(w);
  };
  const data = dataPathOf(envOf(XTR(3), "xtr"), platform, start, "xtr");
  await data.open();
  assert.equal(data.workers, 3);
  // The first reads the host's TUNs, the others a queue of each opened here.
  assert.deepEqual(inits.map((o) => [o.tunFd, o.instanceTuns]), [
    [3, [{ fd: 4, iid: 7 }]],
    [100, [{ fd: 101, iid: 7 }]],
    [102, [{ fd: 103, iid: 7 }]],
  ]);
  assert.deepEqual(platform.log.slice(0, 4), [
    "queue of 3 100",
    "queue of 4 101",
    "queue of 3 102",
    "queue of 4 103",
  ]);
  // Per family: the port checked free without SO_REUSEPORT, then a group of three, spread.
  assert.deepEqual(platform.log.slice(4), [
    "udp ipv4 4341 104",
    "udp ipv4 4341 reuseport 105",
    "udp ipv4 4341 reuseport 106",
    "udp ipv4 4341 reuseport 107",
    `spread 105 ${flowSpreadFilter(3).length / 8} insns`,
    "udp ipv6 4341 108",
    "udp ipv6 4341 reuseport 109",
    "udp ipv6 4341 reuseport 110",
    "udp ipv6 4341 reuseport 111",
    `spread 109 ${flowSpreadFilter(3).length / 8} insns`,
  ]);
  assert.deepEqual(inits.map((o) => [o.udp4Fd, o.udp6Fd]), [[105, 109], [106, 110], [107, 111]]);
  assert.deepEqual(inits.map((o) => o.spread), [true, true, true], "GSO runs of one flow each");
  // Every change reaches every Worker.
  data.setMapping({ prefix: prefix("10.3.0.0/24"), action: "encapsulate", locators: [] });
  data.setLocator("192.0.2.9", false);
  data.deleteMapping(prefix("10.3.0.0/24"));
  data.setLocal([prefix("10.1.0.0/24")]);
  for (const w of workers) {
    assert.deepEqual(w.calls, [
      "local ",
      "petrs",
      "set 10.3.0.0/24",
      "locator 192.0.2.9 down",
      "delete 10.3.0.0/24",
      "local 10.1.0.0/24",
    ]);
  }
  await data.close();
  assert.ok(workers.every((w) => w.stopped));
  // Everything opened here is closed (the probe sockets at once, the rest now).
  assert.deepEqual([...platform.open], []);
});

Deno.test("DataPath pins Worker k to cpus[k % cpus.length] with [data-plane] cpus, and none without", async () => {
  for (
    const [cpus, want] of [
      ["cpus = [1, 0]", [1, 0, 1]],
      ["cpus = [3]", [3, 3, 3]],
      ["", [undefined, undefined, undefined]],
    ] as const
  ) {
    const inits: DataPlaneOptions[] = [];
    const start = (o: DataPlaneOptions) => {
      inits.push(o);
      return Promise.resolve(new RecordingWorker());
    };
    const data = dataPathOf(envOf(`${XTR(3)}\n${cpus}`, "xtr"), new QueuePlatform(), start, "xtr");
    await data.open();
    assert.deepEqual(inits.map((o) => o.cpu), want, cpus);
    await data.close();
  }
});

Deno.test("DataPath hands the changes made while its Workers start to each of them once it runs", async () => {
  const platform = new QueuePlatform();
  const gates = [Promise.withResolvers<void>(), Promise.withResolvers<void>()];
  const workers: RecordingWorker[] = [];
  const start = async () => {
    const w = new RecordingWorker();
    const k = workers.push(w) - 1;
    await gates[k]!.promise;
    return w;
  };
  const data = dataPathOf(envOf(XTR(2), "xtr"), platform, start, "xtr");
  const opening = data.open();
  await Promise.resolve();
  data.setMapping({ prefix: prefix("10.3.0.5/32"), action: "encapsulate", locators: [] });
  gates[1]!.resolve();
  await new Promise((r) => setTimeout(r, 0));
  data.setLocator("192.0.2.1", false);
  gates[0]!.resolve();
  await opening;
  for (const w of workers) {
    assert.deepEqual(w.calls, ["local ", "petrs", "set 10.3.0.5/32", "locator 192.0.2.1 down"]);
  }
  await data.close();
});

Deno.test("DataPath sums the Workers' counters (a gauge: the largest) and entry counts, and says what each carried", async () => {
  const platform = new QueuePlatform();
  const workers: RecordingWorker[] = [];
  const start = () => {
    const w = new RecordingWorker();
    workers.push(w);
    return Promise.resolve(w);
  };
  const data = dataPathOf(envOf(XTR(2), "xtr"), platform, start, "xtr");
  await data.open();
  workers[0]!.values = {
    "encapsulated": 10,
    "tun-read": 10,
    "udp-received": 3,
    "map-cache-entries": 4,
    "dropped:miss": 1,
  };
  workers[1]!.values = {
    "encapsulated": 5,
    "tun-read": 6,
    "udp-received": 0,
    "map-cache-entries": 4,
  };
  workers[0]!.entries = new Map([["[0]10.3.0.0/24", { packets: 10, bytes: 1000 }]]);
  workers[1]!.entries = new Map([
    ["[0]10.3.0.0/24", { packets: 5, bytes: 500 }],
    ["[0]10.4.0.0/24", { packets: 1, bytes: 60 }],
  ]);
  assert.deepEqual(data.counters(), {
    "encapsulated": 15,
    "tun-read": 16,
    "udp-received": 3,
    "map-cache-entries": 4,
    "dropped:miss": 1,
    "worker-packets:0": 13,
    "worker-packets:1": 6,
  });
  assert.deepEqual(
    [...data.entryCounts()!],
    [["[0]10.3.0.0/24", { packets: 15, bytes: 1500 }], ["[0]10.4.0.0/24", {
      packets: 1,
      bytes: 60,
    }]],
  );
  await data.close();
});

Deno.test("DataPath with workers = 1 opens one plain socket per family and no TUN queue", async () => {
  const platform = new QueuePlatform();
  const inits: DataPlaneOptions[] = [];
  const w = new RecordingWorker();
  w.values = { "tun-read": 2 };
  const data = dataPathOf(envOf(XTR(1), "xtr"), platform, (o) => {
    inits.push(o);
    return Promise.resolve(w);
  }, "xtr");
  await data.open();
  assert.deepEqual(platform.log, ["udp ipv4 4341 100", "udp ipv6 4341 101"]);
  assert.deepEqual(inits.map((o) => [o.tunFd, o.udp4Fd, o.udp6Fd]), [[3, 100, 101]]);
  assert.equal(inits[0]!.spread, undefined);
  assert.deepEqual(data.counters(), { "tun-read": 2 }, "no per-Worker key with one Worker");
  await data.close();
});

Deno.test("DataPath runs fewer Workers when the TUN takes no more queues, and says so", async () => {
  const platform = new QueuePlatform();
  platform.queuesLeft = 3; // the third Worker's instance TUN queue is refused
  const lines: string[] = [];
  let started = 0;
  const data = dataPathOf(envOf(XTR(3), "xtr", lines), platform, () => {
    started++;
    return Promise.resolve(new RecordingWorker());
  }, "xtr");
  await data.open();
  assert.equal(data.workers, 2);
  assert.equal(started, 2);
  const warn = lines.find((l) => l.includes("dataplane-workers-reduced"));
  assert.ok(warn?.includes("wanted=3") && warn.includes("workers=2"), warn);
  await data.close();
  assert.deepEqual([...platform.open], [], "the queue opened for the refused Worker is closed too");
});

Deno.test("DataPath: an RTR's Workers share its one raw IPv4 socket; a Worker that fails to start stops the others", async () => {
  const platform = new QueuePlatform();
  const rtr = [
    'operating-mode = "RTR"',
    'map-resolver = ["127.0.0.1"]',
    "[[rtr-iface]]",
    'iface = "lo"',
    "ip_version = 4",
    "[data-plane]",
    "workers = 2",
  ].join("\n");
  const inits: DataPlaneOptions[] = [];
  const data = dataPathOf(envOf(rtr, "rtr"), platform, (o) => {
    inits.push(o);
    return Promise.resolve(new RecordingWorker());
  }, "rtr");
  await data.open();
  assert.equal(inits.length, 2);
  assert.deepEqual(inits.map((o) => o.tunFd), [-1, -1]);
  assert.equal(inits[0]!.natRawFd, inits[1]!.natRawFd);
  assert.notEqual(inits[0]!.udp4Fd, inits[1]!.udp4Fd);
  await data.close();

  const failing = new QueuePlatform();
  const ok = new RecordingWorker();
  let n = 0;
  const data2 = dataPathOf(envOf(rtr, "rtr"), failing, () => {
    return n++ === 0 ? Promise.resolve(ok) : Promise.reject(new Error("bad fd"));
  }, "rtr");
  await assert.rejects(data2.open(), /bad fd/);
  assert.ok(ok.stopped, "the Worker that started is stopped");
  assert.deepEqual([...failing.open], [], "and every socket closed");
});
