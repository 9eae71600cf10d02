import assert from "node:assert/strict";
import dgram from "node:dgram";
import { ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { ACTION, type EidRecord } from "../../wire/eid_record.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import { emitMapRequest } from "../../wire/map_request.ts";
import { parseConfig } from "../../config/mod.ts";
import { ControlPlane, type Received } from "../../core/control.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { parsePrefix, prefixEid } from "../../core/prefix.ts";
import { type MsHandle, startMs } from "../ms.ts";
import { RECENT_REJECTIONS } from "./registrar.ts";

// An ms on loopback and an xTR made of a bare ControlPlane sending hand-built Map-Registers.

interface Lab {
  readonly ms: MsHandle;
  readonly counters: Counters;
  readonly lines: string[];
  readonly xtr: ControlPlane;
  readonly got: Received[];
  readonly clock: { t: number };
}

async function lab(...site: string[]): Promise<Lab> {
  const text = [
    'operating-mode = "MS"',
    'control-address = "127.0.0.1"',
    "control-port = 0",
    "control-rate-limit = 0",
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    'key = "k"',
    ...site,
  ].join("\n");
  const r = parseConfig(text, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  const clock = { t: Date.UTC(2025, 0, 1) };
  const now = () => clock.t;
  const counters = new Counters();
  const lines: string[] = [];
  const logger = new Logger({ role: "ms", now, sink: { write: (l) => lines.push(l) } });
  const ms = await startMs(r.config, { logger, counters, now });
  const xtr = await ControlPlane.open({
    logger: new Logger({ role: "xtr", sink: { write: () => {} } }),
    counters: new Counters(),
    address: "127.0.0.1",
    port: 0,
  });
  const got: Received[] = [];
  xtr.on("map-reply", (_m, rx) => void got.push(rx));
  return { ms, counters, lines, xtr, got, clock };
}

async function close(l: Lab): Promise<void> {
  l.xtr.close();
  await l.ms.close();
}

function record(prefix: string, rlocs: readonly string[], ttl = 10): EidRecord {
  const p = parsePrefix(prefix, 0)!;
  return {
    ttl,
    maskLen: p.len,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: rlocs.map((a) => locatorRecord(ipAddress(a))),
  };
}

let nonce = 1n;

/**
 * Sends a Map-Register of `records` (from xTR-ID `xtrId`) and resolves to
 * whether the ms accepted it, once a Map-Request sent after it is answered.
 */
async function register(l: Lab, records: EidRecord[], xtrId = 1n): Promise<boolean> {
  const n = nonce++;
  const m: MapRegister = {
    proxyReply: true,
    securityCapable: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce: n,
    keyId: 1,
    authData: new Uint8Array(0),
    records,
    xtrIdPresent: true,
    xtrId,
    siteId: 0n,
  };
  const peer = { address: "127.0.0.1", port: l.ms.port };
  const accepted = l.counters.get("oor_map_server_map_registers_accepted_total");
  l.xtr.send(emitSignedMapRegister(m, new HmacKey(1, "k")), peer);
  const barrier = 0xba00n + n;
  l.xtr.send(
    emitMapRequest({
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce: barrier,
      sourceEid: { kind: "none" },
      itrRlocs: [ipAddress("127.0.0.1")],
      records: [{ maskLen: 32, eid: ipAddress("198.51.100.9") }],
    }),
    peer,
  );
  const end = Date.now() + 3000;
  // The ms handles datagrams in order: once the barrier is answered, the Map-Register was handled.
  while (!l.got.some((r) => r.message.type === "map-reply" && r.message.msg.nonce === barrier)) {
    if (Date.now() > end) throw new Error("no answer from the ms");
    await new Promise((res) => setTimeout(res, 2));
  }
  l.got.length = 0;
  return l.counters.get("oor_map_server_map_registers_accepted_total") > accepted;
}

const rejected = (l: Lab, reason: string) =>
  l.counters.get("oor_map_server_map_registers_rejected_total", { reason });

Deno.test("Registrar refuses a site's registrations past max-registrations, counts and logs it, and keeps refreshes", async () => {
  const l = await lab("accept-more-specifics = true", "max-registrations = 3");
  try {
    for (const p of ["10.1.1.0/24", "10.1.2.0/24", "10.1.3.0/24"]) {
      assert.equal(await register(l, [record(p, ["192.0.2.1"])]), true, p);
    }
    assert.equal(await register(l, [record("10.1.4.0/24", ["192.0.2.1"])]), false, "the 4th");
    assert.equal(rejected(l, "site-limit"), 1);
    assert.equal(l.ms.registrations().length, 3);
    // Refreshing what the site holds always fits.
    assert.equal(await register(l, [record("10.1.1.0/24", ["192.0.2.7"])]), true);
    // The same prefix from another xTR is one more registration.
    assert.equal(await register(l, [record("10.1.1.0/24", ["192.0.2.8"])], 2n), false);
    assert.equal(rejected(l, "site-limit"), 2);
    const logged = l.lines.filter((x) => x.includes("map-register-rejected"));
    assert.equal(logged.length, 1, "logged once per source per minute");
    assert.match(logged[0]!, /site-limit/);
    assert.match(logged[0]!, /max-registrations 3/);
    // A withdrawal frees room; a Map-Register that needs two places where one is free takes none.
    assert.equal(await register(l, [record("10.1.3.0/24", [], 0)]), true);
    assert.equal(
      await register(l, [
        record("10.1.5.0/24", ["192.0.2.1"]),
        record("10.1.6.0/24", ["192.0.2.1"]),
      ]),
      false,
    );
    assert.equal(rejected(l, "site-limit"), 3);
    assert.equal(await register(l, [record("10.1.5.0/24", ["192.0.2.1"])]), true);
    assert.deepEqual(l.ms.registrations().map((r) => r.prefix).sort(), [
      "10.1.1.0/24",
      "10.1.2.0/24",
      "10.1.5.0/24",
    ]);
    assert.equal(l.counters.get("oor_map_server_map_registers_accepted_total"), 6);
  } finally {
    await close(l);
  }
});

Deno.test("Registrar counts the default limit of 1024 registrations per site", async () => {
  const l = await lab("accept-more-specifics = true");
  try {
    // 64 records per Map-Register, 16 Map-Registers: 1024 /32s.
    for (let b = 0; b < 16; b++) {
      const recs = Array.from({ length: 64 }, (_, i) => record(`10.1.${b}.${i}/32`, ["192.0.2.1"]));
      assert.equal(await register(l, recs), true, `batch ${b}`);
    }
    assert.equal(l.ms.registrations().length, 1024);
    assert.equal(await register(l, [record("10.1.200.1/32", ["192.0.2.1"])]), false);
    assert.equal(rejected(l, "site-limit"), 1);
  } finally {
    await close(l);
  }
});

/** `n` distinct IPv4 RLOCs from `base` on. */
function rlocs(n: number, base = 0): string[] {
  return Array.from({ length: n }, (_, i) => `10.200.${(base + i) >> 8}.${(base + i) & 255}`);
}

Deno.test("Registrar refuses a registration whose locators merged with other xTRs' pass 255", async () => {
  const l = await lab();
  try {
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(200))], 1n), true);
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(56, 200))], 2n), false);
    assert.equal(rejected(l, "locators"), 1);
    assert.match(l.lines.find((x) => x.includes("map-register-rejected"))!, /more than 255/);
    // Shared locators count once, as the proxy Map-Reply merges them.
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(100, 155))], 2n), true);
    assert.equal(l.ms.registrations().length, 2);
    // xTR 1 replacing its own locators is measured against xTR 2's only.
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(1, 255))], 1n), true);
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(255))], 1n), true, "255 merged");
    assert.equal(await register(l, [record("10.1.0.0/16", rlocs(200, 300))], 1n), false);
    assert.equal(rejected(l, "locators"), 2);
  } finally {
    await close(l);
  }
});

Deno.test("Registrar keeps recent rejections per source and reason for the status page, newest first", async () => {
  const l = await lab();
  try {
    const t0 = l.clock.t;
    assert.equal(await register(l, [record("10.7.0.0/24", ["192.0.2.1"])]), false);
    l.clock.t += 5000;
    assert.equal(await register(l, [record("10.8.0.0/24", ["192.0.2.1"])]), false);
    l.clock.t += 5000;
    assert.equal(await register(l, [record("10.1.5.0/24", ["192.0.2.1"])]), false);
    assert.equal(rejected(l, "no-site"), 2);
    assert.equal(rejected(l, "more-specific"), 1);
    const view = await l.ms.statusSource().sites!();
    assert.deepEqual(view.rejections, [
      {
        from: "127.0.0.1",
        reason: "more-specific",
        detail: view.rejections![0]!.detail,
        count: 1,
        firstAt: t0 + 10_000,
        lastAt: t0 + 10_000,
      },
      {
        from: "127.0.0.1",
        reason: "no-site",
        detail: "10.8.0.0/24 is in no lisp-site",
        count: 2,
        firstAt: t0,
        lastAt: t0 + 5000,
      },
    ]);
    assert.match(view.rejections![0]!.detail, /10\.1\.5\.0\/24/);
  } finally {
    await close(l);
  }
});

Deno.test("Registrar keeps at most RECENT_REJECTIONS sources of rejections, dropping the oldest", async () => {
  const l = await lab();
  const senders: dgram.Socket[] = [];
  try {
    const bytes = emitSignedMapRegister({
      proxyReply: false,
      securityCapable: false,
      rtr: false,
      eidNotify: false,
      useTtlForTimeout: false,
      mergeRequest: false,
      mobileNode: false,
      wantMapNotify: true,
      nonce: 7n,
      keyId: 1,
      authData: new Uint8Array(0),
      records: [record("10.9.0.0/24", ["192.0.2.1"])],
      xtrIdPresent: false,
    }, new HmacKey(1, "k"));
    const n = RECENT_REJECTIONS + 8;
    for (let i = 1; i <= n; i++) {
      const s = dgram.createSocket("udp4");
      senders.push(s);
      await new Promise<void>((r) => s.bind({ address: `127.0.1.${i}`, port: 0 }, r));
      l.clock.t += 1000;
      s.send(bytes, l.ms.port, "127.0.0.1");
      const end = Date.now() + 3000;
      while (rejected(l, "no-site") < i) {
        if (Date.now() > end) throw new Error(`rejection ${i} not counted`);
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    const view = await l.ms.statusSource().sites!();
    assert.equal(view.rejections?.length, RECENT_REJECTIONS);
    assert.equal(view.rejections![0]!.from, `127.0.1.${n}`, "newest first");
    assert.equal(view.rejections!.at(-1)!.from, `127.0.1.${n - RECENT_REJECTIONS + 1}`);
  } finally {
    for (const s of senders) s.close();
    await close(l);
  }
});
