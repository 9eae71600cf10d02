/**
 * A data plane in its own process, driven over stdin/stdout, for the tests
 * that need one per network namespace (tests/e2e/dataplane_netns.ts; a
 * Worker cannot change namespace; a process started with `ip netns exec`
 * lives in one).
 *
 * - {@link DataPlaneNode.spawn} (test side) starts
 *   `ip netns exec <ns> deno run -A scripts/dataplane_node.ts` and offers
 *   typed calls: open a TUN, start a {@link DataPlane} on fresh data
 *   sockets, push mappings, read counters, stop.
 * - Run as a program, this module serves those calls: one JSON request
 *   per stdin line (`{id, cmd, ...}`), one JSON reply per stdout line
 *   (`{id, ok: true, ...}` or `{id, error}`), plus unsolicited events
 *   (`{ev: "miss" | "peer" | "stopped", ...}`).
 *
 * The program refuses to run unless `OOR_DP_NETNS` names the network
 * namespace it runs in and that name starts with `oor-` (the throwaway
 * namespaces of tests and benches), so it never touches the host network.
 *
 * @module
 */

import type { DataAction, DataLocator, DataPlaneMode, Encapsulation } from "../dataplane/api.ts";
import { DataPlane } from "../dataplane/mod.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { Tun } from "../ffi/tun.ts";
import { UdpSocket } from "../ffi/udp.ts";
import { LISP_DATA_PORT, VXLAN_GPE_PORT } from "../wire/data_header.ts";

/** A prefix as text, with its instance id (default 0). */
export interface PrefixJson {
  /** `"10.2.0.0/24"`, `"fd00:2::/64"`. */
  readonly prefix: string;
  /** Instance id. */
  readonly iid?: number;
}

/** A mapping as JSON. */
export interface MappingJson extends PrefixJson {
  /** What to do (default encapsulate). */
  readonly action?: DataAction;
  /** Locators. */
  readonly locators?: readonly DataLocator[];
}

/** Settings of {@link DataPlaneNode.start}. */
export interface NodeStart {
  /** xtr (needs {@link DataPlaneNode.openTun} first) or rtr. */
  readonly mode: DataPlaneMode;
  /** LISP or VXLAN-GPE. */
  readonly encapsulation: Encapsulation;
  /** Data port to bind (default 4341 or 4790 by encapsulation). */
  readonly port?: number;
  /** Open an IPv4 socket (default true). */
  readonly ipv4?: boolean;
  /** Open an IPv6 socket (default true). */
  readonly ipv6?: boolean;
  /** SO_RCVBUF/SO_SNDBUF of the data sockets (default 4 MiB). */
  readonly socketBuffer?: number;
  /** Packets per batch (default 64). */
  readonly batch?: number;
  /** Poll timeout in ms (default 10). */
  readonly pollMs?: number;
  /** Local EID prefixes. */
  readonly local?: readonly PrefixJson[];
  /** Initial mappings. */
  readonly mappings?: readonly MappingJson[];
  /** Proxy-ETRs. */
  readonly petrs?: { readonly ipv4: readonly DataLocator[]; readonly ipv6: readonly DataLocator[] };
}

/** An event from the node: a miss, a peer, or the data plane stopping on its own. */
export type NodeEvent =
  | { readonly ev: "miss"; readonly iid: number; readonly dst: string; readonly src: string }
  | { readonly ev: "peer"; readonly rloc: string; readonly iid: number; readonly srcEid: string }
  | { readonly ev: "stopped"; readonly error?: string };

function toPrefix(p: PrefixJson): Prefix {
  const out = parsePrefix(p.prefix, p.iid ?? 0);
  if (out === undefined) throw new TypeError(`bad prefix ${JSON.stringify(p.prefix)}`);
  return out;
}

// ---------------------------------------------------------------------------
// Client side.

/** A data-plane process in a network namespace. */
export class DataPlaneNode {
  /** The namespace it runs in. */
  readonly ns: string;
  /** Events received so far (misses, peers, stops). */
  readonly events: NodeEvent[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #pending = new Map<number, { ok: (v: unknown) => void; fail: (e: Error) => void }>();
  #nextId = 1;
  readonly #done: Promise<void>;
  #stderr = "";

  private constructor(ns: string, child: Deno.ChildProcess) {
    this.ns = ns;
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#done = Promise.all([this.#readLines(), this.#readErr()]).then(() => {
      for (const p of this.#pending.values()) {
        p.fail(new Error(`node in ${ns} exited: ${this.#stderr.slice(-2000)}`));
      }
      this.#pending.clear();
    });
  }

  /** The process id (for CPU figures from /proc/<pid>/stat). */
  get pid(): number {
    return this.#child.pid;
  }

  /** Starts a node process in namespace `ns` (which must be named `oor-...`). */
  static spawn(ns: string): DataPlaneNode {
    const child = new Deno.Command("ip", {
      args: [
        "netns",
        "exec",
        ns,
        Deno.execPath(),
        "run",
        "-A",
        "--no-check",
        new URL(import.meta.url).pathname,
      ],
      env: { OOR_DP_NETNS: ns, NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new DataPlaneNode(ns, child);
  }

  async #readLines(): Promise<void> {
    const dec = new TextDecoder();
    let buf = "";
    for await (const chunk of this.#child.stdout) {
      buf += dec.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() === "") continue;
        const msg = JSON.parse(line) as { id?: number; error?: string; ev?: string };
        if (msg.ev !== undefined) {
          this.events.push(msg as NodeEvent);
          continue;
        }
        const p = this.#pending.get(msg.id ?? -1);
        if (p === undefined) continue;
        this.#pending.delete(msg.id!);
        if (msg.error !== undefined) p.fail(new Error(`${this.ns}: ${msg.error}`));
        else p.ok(msg);
      }
    }
  }

  async #readErr(): Promise<void> {
    const dec = new TextDecoder();
    for await (const chunk of this.#child.stderr) {
      this.#stderr = (this.#stderr + dec.decode(chunk)).slice(-8000);
    }
  }

  /** Sends one request and waits for its reply. */
  call<T = Record<string, unknown>>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#nextId++;
    const p = new Promise<T>((ok, fail) => {
      this.#pending.set(id, { ok: ok as (v: unknown) => void, fail });
    });
    const line = JSON.stringify({ id, cmd, ...args }) + "\n";
    this.#writer.write(new TextEncoder().encode(line)).catch(() => {});
    return p;
  }

  /** Creates the TUN (default lispTun0, MTU 1440, up); resolves with its index. */
  async openTun(name = "lispTun0", mtu = 1440): Promise<number> {
    const r = await this.call<{ index: number }>("open-tun", { name, mtu });
    return r.index;
  }

  /** Opens the data sockets and starts the data plane. */
  async start(s: NodeStart): Promise<void> {
    await this.call("start", { ...s });
  }

  /** Adds or replaces a mapping; resolves once the data plane uses it (so for the calls below). */
  async set(m: MappingJson): Promise<void> {
    await this.call("set", { mapping: m });
  }

  /** Removes a mapping. */
  async delete(p: PrefixJson): Promise<void> {
    await this.call("delete", { prefix: p });
  }

  /** Marks an RLOC up or down. */
  async locator(address: string, up: boolean): Promise<void> {
    await this.call("locator", { address, up });
  }

  /** Replaces the local EIDs. */
  async local(prefixes: readonly PrefixJson[]): Promise<void> {
    await this.call("local", { prefixes });
  }

  /** Replaces the proxy-ETRs. */
  async petrs(ipv4: readonly DataLocator[], ipv6: readonly DataLocator[]): Promise<void> {
    await this.call("petrs", { ipv4, ipv6 });
  }

  /** The data plane's counters, fresh (every change posted before is in effect). */
  async counters(): Promise<Record<string, number>> {
    const r = await this.call<{ counters: Record<string, number> }>("counters");
    return r.counters;
  }

  /** Stops the data plane and closes its sockets (the TUN stays); resolves with the last counters. */
  async stop(): Promise<Record<string, number>> {
    const r = await this.call<{ counters: Record<string, number> }>("stop");
    return r.counters;
  }

  /** Stops everything and waits for the process to exit (kills it after 5 s). */
  async close(): Promise<void> {
    const exited = this.call("exit").catch(() => {});
    const timer = setTimeout(() => {
      try {
        this.#child.kill("SIGKILL");
      } catch {
        // already gone
      }
    }, 5000);
    await exited;
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#done;
    clearTimeout(timer);
  }

  /** The node's standard error so far (last 8 kB). */
  get stderr(): string {
    return this.#stderr;
  }
}

// ---------------------------------------------------------------------------
// Server side (the program).

/** Refuses to run outside the throwaway namespace named in OOR_DP_NETNS. */
function assertInOwnNetns(): string {
  const ns = Deno.env.get("OOR_DP_NETNS");
  if (ns === undefined || !/^oor-[a-z]-[0-9a-z-]+$/.test(ns)) {
    throw new Error("scripts/dataplane_node.ts runs only through DataPlaneNode.spawn()");
  }
  const mine = Deno.statSync("/proc/self/ns/net").ino;
  const want = Deno.statSync(`/run/netns/${ns}`).ino;
  if (mine === null || mine !== want) throw new Error(`not inside network namespace ${ns}`);
  return ns;
}

async function serve(): Promise<void> {
  assertInOwnNetns();
  const enc = new TextEncoder();
  const out = (m: unknown) => Deno.stdout.writeSync(enc.encode(JSON.stringify(m) + "\n"));
  let tun: Tun | undefined;
  let sockets: UdpSocket[] = [];
  let dp: DataPlane | undefined;

  const stopPlane = async (): Promise<Record<string, number>> => {
    let counters: Record<string, number> = {};
    if (dp !== undefined) {
      const d = dp;
      dp = undefined;
      counters = { ...await d.readCounters() };
      await d.stop();
    }
    for (const s of sockets) s.close();
    sockets = [];
    return counters;
  };

  const handle = async (req: Record<string, unknown>): Promise<Record<string, unknown>> => {
    switch (req.cmd) {
      case "open-tun": {
        tun?.close();
        tun = Tun.open(String(req.name ?? "lispTun0"), { mtu: Number(req.mtu ?? 1440) });
        return { index: tun.index };
      }
      case "start": {
        if (dp !== undefined) throw new Error("already started");
        const s = req as unknown as NodeStart;
        const port = s.port ?? (s.encapsulation === "LISP" ? LISP_DATA_PORT : VXLAN_GPE_PORT);
        const buf = s.socketBuffer ?? 4 << 20;
        const open = (family: "ipv4" | "ipv6") =>
          UdpSocket.open({ family, port, recvBuffer: buf, sendBuffer: buf, reuseAddr: true });
        const udp4 = s.ipv4 === false ? undefined : open("ipv4");
        const udp6 = s.ipv6 === false ? undefined : open("ipv6");
        sockets = [udp4, udp6].filter((x): x is UdpSocket => x !== undefined);
        try {
          dp = await DataPlane.start({
            mode: s.mode,
            encapsulation: s.encapsulation,
            tunFd: s.mode === "xtr" ? tun?.fd ?? -1 : -1,
            udp4Fd: udp4?.fd ?? -1,
            udp6Fd: udp6?.fd ?? -1,
            batch: s.batch ?? 64,
            pollMs: s.pollMs ?? 10,
          }, {
            onMiss: (iid, dst, src) => out({ ev: "miss", iid, dst, src }),
            onPeer: (rloc, iid, srcEid) => out({ ev: "peer", rloc, iid, srcEid }),
            onStopped: (error) =>
              out(error === undefined ? { ev: "stopped" } : { ev: "stopped", error }),
          });
        } catch (e) {
          for (const x of sockets) x.close();
          sockets = [];
          throw e;
        }
        dp.setLocal((s.local ?? []).map(toPrefix));
        for (const m of s.mappings ?? []) dp.setMapping(mapping(m));
        if (s.petrs !== undefined) dp.setPetrs(s.petrs.ipv4, s.petrs.ipv6);
        await dp.readCounters();
        return {};
      }
      case "set":
        plane().setMapping(mapping(req.mapping as MappingJson));
        await plane().readCounters(); // in effect once the Worker answers
        return {};
      case "delete":
        plane().deleteMapping(toPrefix(req.prefix as PrefixJson));
        await plane().readCounters();
        return {};
      case "locator":
        plane().setLocator(String(req.address), req.up === true);
        await plane().readCounters();
        return {};
      case "local":
        plane().setLocal((req.prefixes as PrefixJson[]).map(toPrefix));
        await plane().readCounters();
        return {};
      case "petrs":
        plane().setPetrs(req.ipv4 as DataLocator[], req.ipv6 as DataLocator[]);
        await plane().readCounters();
        return {};
      case "counters":
        return { counters: await plane().readCounters() };
      case "stop":
        return { counters: await stopPlane() };
      case "exit": {
        const counters = await stopPlane();
        tun?.close();
        tun = undefined;
        return { counters, exit: true };
      }
      default:
        throw new Error(`unknown command ${String(req.cmd)}`);
    }
  };

  function plane(): DataPlane {
    if (dp === undefined) throw new Error("not started");
    return dp;
  }

  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Deno.stdin.readable) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim() === "") continue;
      const req = JSON.parse(line) as Record<string, unknown>;
      try {
        const r = await handle(req);
        out({ id: req.id, ok: true, ...r });
        if (r.exit === true) return;
      } catch (e) {
        out({ id: req.id, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }
  await stopPlane();
  tun?.close();
}

function mapping(m: MappingJson) {
  return { prefix: toPrefix(m), action: m.action ?? "encapsulate", locators: m.locators ?? [] };
}

if (import.meta.main) {
  await serve();
  Deno.exit(0);
}
