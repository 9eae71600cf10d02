import assert from "node:assert/strict";
import { ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { emitEcm } from "../../wire/ecm.ts";
import { ACTION } from "../../wire/eid_record.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { emitSignedMapRegister } from "../../wire/map_register.ts";
import { emitMapRequest } from "../../wire/map_request.ts";
import { parseMapReply } from "../../wire/map_reply.ts";
import { parseConfig } from "../../config/mod.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { METRICS } from "../../core/metrics.ts";
import { parsePrefix, prefixEid } from "../../core/prefix.ts";
import { PacketBatch, UdpSocket } from "../../ffi/udp.ts";
import { type MsHandle, msStarter } from "../ms.ts";

const KEY = new HmacKey(2, "serving-key");

function config(extra: string[] = [], address: string | null = "127.0.0.1") {
  const r = parseConfig(
    [
      'operating-mode = "MS"',
      ...(address !== null ? [`control-address = "${address}"`] : []),
      "control-port = 0",
      ...extra,
      "[[lisp-site]]",
      'eid-prefix = "10.0.0.0/8"',
      "key-type = 2",
      'key = "serving-key"',
      "accept-more-specifics = true",
      "max-registrations = 100000",
    ].join("\n"),
    { role: "ms" },
  );
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return r.config;
}

async function start(workers: number, extra: string[] = [], address?: string | null) {
  const counters = new Counters();
  const lines: string[] = [];
  const logger = new Logger({ role: "ms", level: "info", sink: { write: (l) => lines.push(l) } });
  const ms: MsHandle = await msStarter({ workers })(
    config(extra, address === undefined ? "127.0.0.1" : address),
    { logger, counters, now: Date.now },
  );
  return { ms, counters, lines };
}

/** A client socket driven synchronously (it blocks this thread only briefly, in poll). */
class Client {
  readonly s: UdpSocket;
  readonly port: number;
  readonly #to: string;
  readonly #buf = new Uint8Array(65536);

  constructor(address = "127.0.0.1") {
    this.s = UdpSocket.open({ address, recvBuffer: 8 << 20 });
    this.port = this.s.localAddress().port;
    this.#to = address;
  }

  send(b: Uint8Array, port: number): void {
    assert.equal(this.s.sendTo(b, 0, b.length, this.#to, port), b.length);
  }

  /** The next datagram, within `ms`. */
  async next(ms = 3000): Promise<Uint8Array> {
    const end = Date.now() + ms;
    for (;;) {
      const n = this.s.recvFrom(this.#buf);
      if (n > 0) return this.#buf.slice(0, n);
      if (Date.now() > end) throw new Error("no answer");
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  close(): void {
    this.s.close();
  }
}

function register(prefix: string, nonce: bigint, rloc: string, proxy = true): Uint8Array {
  const p = parsePrefix(prefix)!;
  return emitSignedMapRegister({
    proxyReply: proxy,
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce,
    keyId: 2,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [locatorRecord(ipAddress(rloc))],
    }],
    xtrId: nonce,
    siteId: 1n,
  }, KEY);
}

function request(eid: string, nonce: bigint, port: number, itr = "127.0.0.1"): Uint8Array {
  const v6 = itr.includes(":");
  return emitEcm({
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: {
      src: itr,
      dst: v6 ? "::1" : eid,
      srcPort: port,
      dstPort: 4342,
      ttl: 64,
    },
    payload: emitMapRequest({
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid: { kind: "none" },
      itrRlocs: [ipAddress(itr)],
      records: [{ maskLen: 32, eid: ipAddress(eid) }],
    }),
  });
}

const sum = (c: Counters, path: string, workers: number) => {
  let n = 0;
  for (let w = 0; w < workers; w++) {
    n += c.get(METRICS.msWorkerDatagrams, { worker: String(w), path });
  }
  return n;
};

Deno.test("ms on 2 Workers: a Map-Request sent the moment the Map-Notify arrives sees the registration, on every Worker, under load", async () => {
  const t = await start(2, ["control-rate-limit = 0"]);
  const xtr = new Client();
  const load = [0, 1, 2, 3].map(() => new Client());
  const asker = new Client();
  try {
    // Background load from 4 sockets: negative requests, 64 in flight each.
    let stop = false;
    let loadAnswers = 0;
    const pumps = load.map(async (c, k) => {
      let nonce = BigInt(k) << 40n;
      const batch = new PacketBatch({ slots: 64, slotSize: 2048 });
      while (!stop) {
        for (let i = 0; i < 64; i++) {
          c.send(request(`10.200.${k}.${i}`, nonce++, c.port), t.ms.port);
        }
        let got = 0;
        const end = Date.now() + 2000;
        while (got < 64 && Date.now() < end) {
          const n = c.s.recvmmsg(batch);
          if (n > 0) got += n;
          else await new Promise((r) => setTimeout(r, 0));
        }
        loadAnswers += got;
      }
    });
    const rounds = 200;
    for (let i = 0; i < rounds; i++) {
      const prefix = `10.${1 + (i >> 8)}.${i & 0xff}.0/24`;
      xtr.send(register(prefix, BigInt(i + 1), "192.0.2.1"), t.ms.port);
      const notify = await xtr.next();
      assert.equal(notify[0]! >>> 4, 4, "a Map-Notify");
      // Right away, from this socket and another, to each Worker: the kernel
      // gives a datagram to the Worker of its nonce (an even nonce to Worker
      // 0, an odd one to Worker 1, worker_pool.ts nonceSpreadFilter()).
      const eid = prefix.replace(/0\/24$/, "9");
      const from = [xtr, asker, asker];
      from.forEach((c, k) =>
        c.send(request(eid, 0x5000n + BigInt(2 * i + (k & 1)), c.port), t.ms.port)
      );
      for (const [k, c] of from.entries()) {
        const reply = parseMapReply(
          await c.next().catch((e) => {
            throw new Error(
              `round ${i}, asker ${k}: ${e.message} ${JSON.stringify(t.counters.snapshot())}`,
            );
          }),
        );
        assert.equal(reply.records[0]!.locators.length, 1, `round ${i}, asker ${k}: seen at once`);
      }
    }
    stop = true;
    await Promise.all(pumps);
    assert.ok(loadAnswers > 1000, `${loadAnswers} background answers`);
    assert.equal(sum(t.counters, "register", 2), rounds);
    assert.equal(t.counters.get(METRICS.msRegistersAccepted), rounds);
    assert.equal(t.ms.registrations().length, rounds);
  } finally {
    for (const c of [xtr, ...load, asker]) c.close();
    await t.ms.close();
  }
});

Deno.test("ms on 2 Workers: one busy source (one address and port) keeps both Workers busy", async () => {
  const t = await start(2, ["control-rate-limit = 0"]);
  const c = new Client();
  try {
    const batch = new PacketBatch({ slots: 64, slotSize: 2048 });
    let got = 0;
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 50; i++) {
        c.send(request(`10.44.${round}.${i}`, BigInt(round * 100 + i), c.port), t.ms.port);
      }
      const end = Date.now() + 2000;
      let n = 0;
      while (n < 50 && Date.now() < end) {
        const k = c.s.recvmmsg(batch);
        if (k > 0) n += k;
        else await new Promise((r) => setTimeout(r, 1));
      }
      got += n;
    }
    assert.equal(got, 2000);
    await new Promise((r) => setTimeout(r, 20));
    const per = [0, 1].map((w) =>
      t.counters.get(METRICS.msWorkerDatagrams, { worker: String(w), path: "answered" })
    );
    assert.equal(per[0]! + per[1]!, 2000);
    assert.ok(Math.min(...per) > 600, `spread by nonce: ${per.join(" / ")}`);
  } finally {
    c.close();
    await t.ms.close();
  }
});

Deno.test("ms on 2 Workers: registrations from several sockets, requests from others, all answered consistently", async () => {
  const t = await start(2);
  const xtrs = [0, 1, 2].map(() => new Client());
  const itrs = [0, 1, 2].map(() => new Client());
  try {
    for (let i = 0; i < 60; i++) {
      const x = xtrs[i % 3]!;
      x.send(register(`10.9.${i}.0/24`, BigInt(1000 + i), `192.0.2.${1 + (i % 200)}`), t.ms.port);
      await x.next();
      for (const itr of itrs) {
        itr.send(request(`10.9.${i}.1`, BigInt(i), itr.port), t.ms.port);
        const r = parseMapReply(await itr.next());
        assert.equal(r.records[0]!.locators[0]!.address.kind, "ipv4");
        assert.equal(
          (r.records[0]!.locators[0]!.address as { ip: string }).ip,
          `192.0.2.${1 + (i % 200)}`,
        );
      }
    }
    // Outside the registrations: the negative answer of the site.
    itrs[0]!.send(request("10.250.0.1", 7n, itrs[0]!.port), t.ms.port);
    const neg = parseMapReply(await itrs[0]!.next()).records[0]!;
    assert.deepEqual([neg.action, neg.ttl, neg.locators.length], [ACTION.NATIVELY_FORWARD, 1, 0]);
  } finally {
    for (const c of [...xtrs, ...itrs]) c.close();
    await t.ms.close();
  }
});

Deno.test("ms on 2 Workers: one source's requests past the rate limit are dropped whichever Worker gets them", async () => {
  const t = await start(2, ["control-rate-limit = 10"]);
  const clients = [0, 1, 2, 3, 4, 5].map(() => new Client());
  try {
    // 6 sockets of 127.0.0.1: the kernel spreads them over both Workers; one bucket (20).
    for (let i = 0; i < 10; i++) {
      for (const c of clients) c.send(request(`10.7.0.${i}`, BigInt(i), c.port), t.ms.port);
    }
    await new Promise((r) => setTimeout(r, 300));
    let answered = 0;
    for (const c of clients) {
      for (;;) {
        try {
          await c.next(10);
          answered++;
        } catch {
          break;
        }
      }
    }
    assert.ok(
      answered >= 20 && answered <= 22,
      `${answered} answered of 60 (burst 20, refill 10/s)`,
    );
    assert.ok(
      t.counters.get(METRICS.controlDropped, { reason: "rate-limited" }) >= 38,
      JSON.stringify(t.counters.snapshot()),
    );
    assert.ok(sum(t.counters, "dropped", 2) >= 38);
  } finally {
    for (const c of clients) c.close();
    await t.ms.close();
  }
});

Deno.test("ms on 2 Workers: a request for a registration without proxy-reply is forwarded by the main thread", async () => {
  const t = await start(2);
  const xtr = new Client();
  const etr = UdpSocket.open({ address: "127.0.0.2", port: 4342 });
  const itr = new Client();
  try {
    xtr.send(register("10.5.0.0/16", 42n, "127.0.0.2", false), t.ms.port);
    await xtr.next();
    itr.send(request("10.5.1.1", 77n, itr.port), t.ms.port);
    const buf = new Uint8Array(2048);
    const end = Date.now() + 3000;
    let n = -1;
    while ((n = etr.recvFrom(buf)) < 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(n > 0, "the ETR got the forwarded request");
    assert.equal(buf[0]! >>> 4, 8, "an ECM");
    assert.equal(t.counters.get(METRICS.msMapRequestsAnswered, { kind: "forwarded" }), 1);
    assert.ok(sum(t.counters, "main", 2) >= 1);
  } finally {
    xtr.close();
    itr.close();
    etr.close();
    await t.ms.close();
  }
});

Deno.test("ms on 2 Workers bound to the wildcard answers over IPv4 and IPv6 on one port", async () => {
  const t = await start(2, ["control-rate-limit = 0"], null);
  const c4 = new Client("127.0.0.1");
  const c6 = new Client("::1");
  try {
    for (let i = 0; i < 40; i++) {
      c4.send(request(`10.60.0.${i}`, BigInt(i), c4.port), t.ms.port);
      c6.send(request(`10.60.1.${i}`, BigInt(100 + i), c6.port, "::1"), t.ms.port);
      for (const c of [c4, c6]) {
        const r = parseMapReply(
          await c.next().catch((e) => {
            throw new Error(
              `${c === c4 ? "IPv4" : "IPv6"} ${i}: ${e.message} ${
                JSON.stringify(t.counters.snapshot())
              } ${t.lines.join("")}`,
            );
          }),
        );
        assert.equal(r.records[0]!.action, ACTION.NATIVELY_FORWARD);
      }
    }
    await new Promise((r) => setTimeout(r, 20));
    const per = [0, 1].map((w) =>
      t.counters.get(METRICS.msWorkerDatagrams, { worker: String(w), path: "answered" })
    );
    assert.equal(per[0]! + per[1]!, 80);
    assert.ok(per[0]! > 0 && per[1]! > 0, per.join(" / "));
  } finally {
    c4.close();
    c6.close();
    await t.ms.close();
  }
});

Deno.test("ms on Workers frees its port when closed, and refuses a port another process holds", async () => {
  const t = await start(2);
  const port = t.ms.port;
  await t.ms.close();
  const again = UdpSocket.open({ address: "127.0.0.1", port });
  try {
    const c = config().controlPort;
    assert.equal(c, 0);
    const r = parseConfig(
      [
        'operating-mode = "MS"',
        'control-address = "127.0.0.1"',
        `control-port = ${port}`,
        "[[lisp-site]]",
        'eid-prefix = "10.0.0.0/8"',
        'key = "k"',
      ].join("\n"),
      { role: "ms" },
    );
    if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
    await assert.rejects(
      msStarter({ workers: 2 })(r.config, {
        logger: new Logger({ role: "ms", sink: { write: () => {} } }),
        counters: new Counters(),
        now: Date.now,
      }),
      /Address already in use|EADDRINUSE/,
    );
  } finally {
    again.close();
  }
});
