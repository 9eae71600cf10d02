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
import { type DataPlaneOptions, defaultTiming, type Env } from "./context.ts";
import { DataPath } from "./datapath.ts";
import type { HostSetup } from "./host.ts";
import type { Platform } from "./platform.ts";

/** Records what the data path tells it. */
class RecordingWorker implements DataPlaneHandle {
  readonly calls: string[] = [];
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
    return {};
  }
  stop(): Promise<void> {
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
