/**
 * A failed registration made loud: when the registrations with a
 * map-server become failing (registration.ts), a warning
 * (`registration-failing`) says what was tried and the likely cause, once
 * and then at most every {@link WARN_REPEAT_MS} while it lasts; an info
 * line (`registration-recovered`) when a valid Map-Notify ends it.
 *
 * A wrong key looks the same as no answer from here: the map-server sends
 * nothing back. So the cause names what it may be ({@link likelyCause}),
 * narrowed by what can be checked locally: a Map-Notify that failed
 * authentication (the keys differ), the key type (OOR 1.3.0's map-server
 * takes HMAC-SHA-1-96 only), a route to the map-server (a connected UDP
 * socket: `connect()` fails with ENETUNREACH/EHOSTUNREACH), and an ICMP
 * port unreachable for an empty datagram sent to its control port (that
 * socket then reads ECONNREFUSED). The probe is one socket and one empty
 * datagram per warning, not per Map-Register.
 *
 * @module
 */

import { KEY_ID_HMAC_SHA256_128 } from "../../wire/auth.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { ECONNREFUSED, ErrnoError } from "../../ffi/libc.ts";
import { UdpSocket } from "../../ffi/udp.ts";
import type { Logger } from "../../core/log.ts";

/** The warning is repeated at most this often while a map-server stays failing (5 minutes). */
export const WARN_REPEAT_MS = 300_000;
/** How long the probe waits for an ICMP port unreachable. */
export const PROBE_WAIT_MS = 300;

/** What the local probe of a map-server found ({@link probeMapServer}). */
export type ProbeResult =
  | { readonly kind: "ok" }
  | { readonly kind: "no-route"; readonly error: string }
  | { readonly kind: "port-unreachable" }
  | { readonly kind: "error"; readonly error: string };

/** What is known of a failing registration with one map-server, for {@link likelyCause}. */
export interface FailureFacts {
  /** The `key-type` used with it (1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128). */
  readonly keyType: number;
  /** Map-Notifies from it that failed authentication during the failure. */
  readonly authFailures: number;
  /** What the probe found; undefined when none ran (registration through RTRs). */
  readonly probe?: ProbeResult;
  /** Registration goes through RTRs (behind a NAT). */
  readonly viaRtr?: boolean;
}

/** The likely cause of a failing registration, most certain first (see the module notes). */
export function likelyCause(f: FailureFacts): string {
  if (f.authFailures > 0) {
    return "a Map-Notify came back but failed authentication: the key (or key-type) differs from the map-server's";
  }
  const p = f.probe;
  if (p?.kind === "no-route") return `no route to the map-server (${p.error})`;
  if (p?.kind === "port-unreachable") {
    return "the map-server's host answers ICMP port unreachable: nothing listens on its control port";
  }
  const keyType = f.keyType === KEY_ID_HMAC_SHA256_128
    ? "wrong key, or key-type 2 (HMAC-SHA-256), which OOR 1.3.0's map-server does not take (use key-type 1)"
    : "wrong key or key-type";
  const way = f.viaRtr === true
    ? "map-server or RTR unreachable"
    : p?.kind === "error"
    ? `map-server unreachable (probe: ${p.error})`
    : "map-server unreachable or not answering (the route is there, no ICMP unreachable came back)";
  return `${keyType}, EID prefix not in a site there, or ${way}`;
}

/**
 * Probes `address`:`port` from a fresh connected UDP socket: a failed
 * `connect()` means no route; otherwise an empty datagram goes and, after
 * {@link PROBE_WAIT_MS}, a pending ECONNREFUSED means an ICMP port
 * unreachable came back. Never throws.
 */
export async function probeMapServer(address: string, port: number): Promise<ProbeResult> {
  let s: UdpSocket;
  try {
    s = UdpSocket.open({ family: isIPv4(address) ? "ipv4" : "ipv6" });
  } catch (e) {
    return { kind: "error", error: e instanceof Error ? e.message : String(e) };
  }
  try {
    try {
      s.connect(address, port);
    } catch (e) {
      if (e instanceof ErrnoError) return { kind: "no-route", error: e.code };
      return { kind: "error", error: e instanceof Error ? e.message : String(e) };
    }
    const empty = new Uint8Array(1);
    if (s.sendTo(empty, 0, 0, address, port) < 0) {
      return s.errno === ECONNREFUSED
        ? { kind: "port-unreachable" }
        : { kind: "no-route", error: `send errno ${s.errno}` };
    }
    await new Promise((r) => setTimeout(r, PROBE_WAIT_MS));
    const buf = new Uint8Array(64);
    if (s.recvFrom(buf) < 0 && s.errno === ECONNREFUSED) return { kind: "port-unreachable" };
    return { kind: "ok" };
  } finally {
    s.close();
  }
}

/** One map-server's registrations, as {@link RegistrationAlarm.update} is told of them. */
export interface MapServerFailure {
  /** Whether the registrations with it are failing now. */
  readonly failing: boolean;
  /** The first unanswered Map-Register of the failure, ms since the epoch. */
  readonly since: number;
  /** Map-Registers sent to it that got no valid Map-Notify, since `since`. */
  readonly mapRegisters: number;
  /** The prefixes registered with it that are not acknowledged. */
  readonly prefixes: readonly string[];
  /** Facts for {@link likelyCause} (the probe is added here). */
  readonly facts: Omit<FailureFacts, "probe">;
  /** The map-server's control port (for the probe). */
  readonly port: number;
}

interface Episode {
  since: number;
  warnedAt: number | null;
  probe: ProbeResult | undefined;
  cause: string;
  probing: boolean;
}

/**
 * The warnings of failing registrations, per map-server (see the module
 * notes). `update()` is called after each Map-Register and each valid
 * Map-Notify; `failure()` is what the status page shows.
 */
export class RegistrationAlarm {
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #probe: ((address: string, port: number) => Promise<ProbeResult>) | undefined;
  readonly #repeatMs: number;
  readonly #episodes = new Map<string, Episode>();
  /** The last warning per map-server, across failures: one that flaps warns at the slow rate. */
  readonly #lastWarn = new Map<string, number>();
  readonly #signal: AbortSignal | undefined;

  /** `probe` undefined: {@link probeMapServer}; null: no probe. */
  constructor(opts: {
    readonly log: Logger;
    readonly now: () => number;
    readonly probe?: ((address: string, port: number) => Promise<ProbeResult>) | null;
    readonly repeatMs?: number;
    readonly signal?: AbortSignal;
  }) {
    this.#log = opts.log;
    this.#now = opts.now;
    this.#probe = opts.probe === null ? undefined : opts.probe ?? probeMapServer;
    this.#repeatMs = opts.repeatMs ?? WARN_REPEAT_MS;
    if (opts.signal !== undefined) this.#signal = opts.signal;
  }

  /** Since when `address` fails and why, while it does (the status page). */
  failure(address: string): { readonly since: number; readonly cause: string } | undefined {
    const e = this.#episodes.get(address);
    return e === undefined ? undefined : { since: e.since, cause: e.cause };
  }

  /** The state of the registrations with `address` now: warns, repeats or says it recovered. */
  update(address: string, f: MapServerFailure): void {
    let e = this.#episodes.get(address);
    if (!f.failing) {
      if (e === undefined) return;
      this.#episodes.delete(address);
      if (e.warnedAt !== null) {
        this.#log.info("registration-recovered", {
          mapServer: address,
          failedFor: `${Math.round((this.#now() - e.since) / 1000)}s`,
        });
      }
      return;
    }
    const now = this.#now();
    if (e === undefined) {
      e = {
        since: f.since,
        warnedAt: null,
        probe: undefined,
        cause: likelyCause(f.facts),
        probing: false,
      };
      this.#episodes.set(address, e);
    }
    const last = this.#lastWarn.get(address);
    if (e.probing || (last !== undefined && now - last < this.#repeatMs)) return;
    const ep = e;
    const warn = () => {
      if (this.#episodes.get(address) !== ep || this.#signal?.aborted) return;
      ep.cause = likelyCause({
        ...f.facts,
        ...(ep.probe !== undefined ? { probe: ep.probe } : {}),
      });
      ep.warnedAt = this.#now();
      this.#lastWarn.set(address, ep.warnedAt);
      this.#log.warn("registration-failing", {
        mapServer: address,
        problem: `no Map-Notify from ${address} after ${f.mapRegisters} Map-Registers`,
        since: new Date(ep.since).toISOString(),
        prefixes: f.prefixes.join(","),
        cause: ep.cause,
        next: `repeated every ${Math.round(this.#repeatMs / 60_000)} min while it lasts`,
      });
    };
    if (this.#probe === undefined || f.facts.viaRtr === true) {
      warn();
      return;
    }
    ep.probing = true;
    this.#probe(address, f.port).then((p) => {
      ep.probing = false;
      ep.probe = p;
      warn();
    }, () => {
      ep.probing = false;
      warn();
    });
  }

  /** Forgets `address` (no longer a map-server of the config). */
  forget(address: string): void {
    this.#episodes.delete(address);
    this.#lastWarn.delete(address);
  }
}
