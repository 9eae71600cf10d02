import assert from "node:assert/strict";
import { ControlPlane, type Received } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { type Address, ipAddress } from "../wire/address.ts";
import type { EidRecord } from "../wire/eid_record.ts";
import { HmacKey, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import { emitMapReply } from "../wire/map_reply.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { parseConfig } from "../config/mod.ts";
import { startMs } from "../roles/ms.ts";
import type { MapRequest } from "../wire/map_request.ts";
import { lig, ligOptionsFromValues, parseLigArgs, routeSource, runLig } from "./lig.ts";

/** What a fake map-resolver saw: the ECM'd Map-Request and its outer source. */
interface Seen {
  readonly request: MapRequest;
  readonly received: Received;
}

/**
 * A map-resolver made of a bare ControlPlane: answers each ECM Map-Request
 * with `answer(request)` (a Map-Reply's records, or undefined to stay
 * silent), sent to the ITR-RLOC and the inner UDP source port, after
 * `delayMs(attempt)` milliseconds.
 */
async function fakeMr(
  answer: (m: MapRequest) => readonly EidRecord[] | undefined,
  opts: { address?: string; delayMs?: (n: number) => number } = {},
) {
  const seen: Seen[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const cp = await ControlPlane.open({
    logger: new Logger({ role: "fake-mr", level: "error", sink: { write: () => {} } }),
    counters: new Counters(),
    address: opts.address ?? "127.0.0.1",
    port: 0,
  });
  cp.on("map-request", (request, r) => {
    if (r.ecm === undefined) return;
    seen.push({ request, received: r });
    const records = answer(request);
    if (records === undefined) return;
    const itr = request.itrRlocs[0]!;
    const to = {
      address: itr.kind === "ipv4" || itr.kind === "ipv6" ? itr.ip : "",
      port: r.ecm.inner.srcPort,
    };
    const bytes = emitMapReply({
      probe: false,
      echoNonce: false,
      security: false,
      nonce: request.nonce,
      records,
    });
    const delay = opts.delayMs?.(seen.length) ?? 0;
    if (delay === 0) cp.send(bytes, to);
    else {
      const t = setTimeout(() => {
        timers.delete(t);
        cp.send(bytes, to);
      }, delay);
      timers.add(t);
    }
  });
  return {
    port: cp.port,
    seen,
    close() {
      for (const t of timers) clearTimeout(t);
      cp.close();
    },
  };
}

function locator(ip: string, priority: number, weight: number, reachable = true) {
  return {
    priority,
    weight,
    mPriority: 255,
    mWeight: 0,
    local: false,
    probed: false,
    reachable,
    address: ipAddress(ip),
  };
}

function record(eid: Address, maskLen: number, extra: Partial<EidRecord> = {}): EidRecord {
  return {
    ttl: 1440,
    maskLen,
    action: 0,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid,
    locators: [],
    ...extra,
  };
}

const POSITIVE = record(ipAddress("10.1.0.0"), 16, {
  locators: [locator("192.0.2.10", 1, 100), locator("192.0.2.11", 2, 50, false)],
});

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: { stdout: (t: string) => void out.push(t), stderr: (t: string) => void err.push(t) },
    text: () => out.join(""),
  };
}

Deno.test("runLig() prints the mapping, the replier and the RTT of a positive reply", async () => {
  const mr = await fakeMr(() => [POSITIVE]);
  try {
    const c = capture();
    const code = await runLig(["10.1.2.3", "--mr", "127.0.0.1", "--port", String(mr.port)], c.io);
    assert.equal(code, 0, c.err.join(""));
    const text = c.text();
    assert.match(
      text,
      new RegExp(`^Send map-request to 127\\.0\\.0\\.1:${mr.port} for 10\\.1\\.2\\.3 \\.\\.\\.\n`),
    );
    assert.match(
      text,
      new RegExp(`Received map-reply from 127\\.0\\.0\\.1:${mr.port} with rtt \\d+\\.\\d{3} ms\n`),
    );
    assert.match(text, /Mapping entry for EID 10\.1\.2\.3:\n/);
    assert.match(text, /10\.1\.0\.0\/16, record ttl: 1440 min, auth bit: 1, action: no-action\n/);
    assert.match(text, / {2}Locator\s+State\s+Priority\/Weight\n/);
    assert.match(text, / {2}192\.0\.2\.10\s+up\s+1\/100\n/);
    assert.match(text, / {2}192\.0\.2\.11\s+down\s+2\/50\n/);
    assert.doesNotMatch(text, /negative/);
  } finally {
    mr.close();
  }
});

Deno.test("lig() sends an ECM whose inner header and ITR-RLOC lead back to its own socket", async () => {
  const mr = await fakeMr(() => [POSITIVE]);
  try {
    const r = await lig({ eid: "10.1.2.3", mr: "127.0.0.1", port: mr.port }, {
      nonce: () => 0x1234n,
    });
    assert.equal(mr.seen.length, 1);
    const { request, received } = mr.seen[0]!;
    const inner = received.ecm!.inner;
    assert.equal(inner.src, "127.0.0.1");
    assert.equal(inner.dst, "10.1.2.3");
    assert.equal(inner.dstPort, 4342);
    // The reply goes to the inner source port: the socket the ECM came from.
    assert.equal(inner.srcPort, received.from.port);
    assert.deepEqual(request.itrRlocs, [{ kind: "ipv4", ip: "127.0.0.1" }]);
    assert.deepEqual(request.records, [{ maskLen: 32, eid: { kind: "ipv4", ip: "10.1.2.3" } }]);
    assert.equal(request.nonce, 0x1234n);
    assert.equal(r.reply?.nonce, 0x1234n);
    assert.equal(r.reply?.attempt, 1);
    assert.equal(r.attempts, 1);
    assert.ok(r.reply!.rttMs >= 0);
  } finally {
    mr.close();
  }
});

Deno.test("runLig() --json prints one object with the records and locators", async () => {
  const mr = await fakeMr(() => [POSITIVE]);
  try {
    const c = capture();
    const code = await runLig(
      ["10.1.0.0/16", "--mr", "127.0.0.1", "--port", String(mr.port), "--json"],
      c.io,
    );
    assert.equal(code, 0, c.err.join(""));
    assert.equal(c.out.length, 1);
    const j = JSON.parse(c.text());
    assert.equal(j.eid, "10.1.0.0/16");
    assert.equal(j.mr, `127.0.0.1:${mr.port}`);
    assert.equal(j.replier, `127.0.0.1:${mr.port}`);
    assert.equal(j.source, "127.0.0.1");
    assert.equal(j.timeout, false);
    assert.equal(j.negative, false);
    assert.equal(typeof j.rttMs, "number");
    assert.match(j.nonce, /^0x[0-9a-f]{16}$/);
    assert.equal(j.records.length, 1);
    const rec = j.records[0];
    assert.equal(rec.eidPrefix, "10.1.0.0/16");
    assert.equal(rec.ttl, 1440);
    assert.equal(rec.action, "no-action");
    assert.equal(rec.authoritative, true);
    assert.equal(rec.iid, undefined);
    assert.deepEqual(rec.locators[0], {
      address: "192.0.2.10",
      priority: 1,
      weight: 100,
      mPriority: 255,
      mWeight: 0,
      state: "up",
      local: false,
      probed: false,
    });
    assert.equal(rec.locators[1].state, "down");
    // The prefix asked for went out with its length.
    assert.deepEqual(mr.seen[0]!.request.records, [{
      maskLen: 16,
      eid: { kind: "ipv4", ip: "10.1.0.0" },
    }]);
  } finally {
    mr.close();
  }
});

Deno.test("runLig() shows a negative reply with its action and TTL, in text and JSON", async () => {
  const neg = record(ipAddress("10.128.0.0"), 9, { ttl: 15, action: 1 });
  const mr = await fakeMr(() => [neg]);
  try {
    const c = capture();
    const args = ["10.200.0.1", "--mr", "127.0.0.1", "--port", String(mr.port)];
    assert.equal(await runLig(args, c.io), 0, c.err.join(""));
    assert.match(
      c.text(),
      /10\.128\.0\.0\/9, record ttl: 15 min, auth bit: 1, negative, action: native-forward\n/,
    );
    assert.doesNotMatch(c.text(), /Locator/);
    const j = capture();
    assert.equal(await runLig([...args, "--json"], j.io), 0);
    const o = JSON.parse(j.text());
    assert.equal(o.negative, true);
    assert.equal(o.records[0].negative, true);
    assert.equal(o.records[0].action, "native-forward");
    assert.equal(o.records[0].ttl, 15);
    assert.deepEqual(o.records[0].locators, []);
  } finally {
    mr.close();
  }
});

Deno.test("runLig() exits 1 with a clear message when no reply comes after --count tries", async () => {
  const mr = await fakeMr(() => undefined);
  try {
    const c = capture();
    const started = performance.now();
    const code = await runLig(
      [
        "10.1.2.3",
        "--mr",
        "127.0.0.1",
        "--port",
        String(mr.port),
        "--count",
        "2",
        "--timeout",
        "0.2",
      ],
      c.io,
    );
    const took = performance.now() - started;
    assert.equal(code, 1);
    assert.equal(mr.seen.length, 2);
    // Each attempt has its own nonce.
    assert.notEqual(mr.seen[0]!.request.nonce, mr.seen[1]!.request.nonce);
    assert.equal(c.out.filter((l) => l.startsWith("Send map-request")).length, 2);
    assert.equal(
      c.err.join(""),
      `oor lig: no map-reply from 127.0.0.1:${mr.port} for 10.1.2.3 after 2 map-requests (0.2 s each)\n`,
    );
    assert.ok(took >= 390, `waited ${took} ms`);
    const j = capture();
    assert.equal(
      await runLig(
        [
          "10.1.2.3",
          "--mr",
          "127.0.0.1",
          "--port",
          String(mr.port),
          "--count",
          "1",
          "--timeout",
          "0.1",
          "--json",
        ],
        j.io,
      ),
      1,
    );
    const o = JSON.parse(j.text());
    assert.equal(o.timeout, true);
    assert.equal(o.attempts, 1);
    assert.equal(o.replier, undefined);
  } finally {
    mr.close();
  }
});

Deno.test("lig() takes a late reply to an earlier attempt and times it from that attempt", async () => {
  // The first request is answered after 350 ms, past its 200 ms timeout;
  // the second is never answered.
  const mr = await fakeMr(() => [POSITIVE], {
    delayMs: (n) => (n === 1 ? 350 : 10_000),
  });
  try {
    const r = await lig({
      eid: "10.1.2.3",
      mr: "127.0.0.1",
      port: mr.port,
      count: 3,
      timeoutSeconds: 0.2,
    });
    assert.equal(r.attempts, 2);
    assert.equal(r.reply?.attempt, 1);
    assert.ok(r.reply!.rttMs >= 340, `rtt ${r.reply!.rttMs}`);
  } finally {
    mr.close();
  }
});

Deno.test("runLig() looks up an IPv6 EID, through an IPv4 and an IPv6 map-resolver", async () => {
  const v6 = record(ipAddress("2001:db8:1::"), 48, {
    locators: [locator("2001:db8:ff::1", 1, 100)],
  });
  for (const address of ["127.0.0.1", "::1"]) {
    const mr = await fakeMr(() => [v6], { address });
    try {
      const c = capture();
      const code = await runLig(
        ["2001:db8:1::5", "--mr", address, "--port", String(mr.port)],
        c.io,
      );
      assert.equal(code, 0, c.err.join(""));
      assert.match(
        c.text(),
        /Mapping entry for EID 2001:db8:1::5:\n2001:db8:1::\/48, record ttl: 1440 min/,
      );
      assert.match(c.text(), / {2}2001:db8:ff::1\s+up\s+1\/100\n/);
      const { request, received } = mr.seen[0]!;
      assert.deepEqual(request.records, [{
        maskLen: 128,
        eid: { kind: "ipv6", ip: "2001:db8:1::5" },
      }]);
      assert.equal(received.ecm!.inner.dst, "2001:db8:1::5");
      // Over IPv4 the inner source is IPv6's unspecified address; the ITR-RLOC stays ours.
      assert.equal(received.ecm!.inner.src, address === "::1" ? "::1" : "::");
      assert.deepEqual(request.itrRlocs, [ipAddress(address)]);
    } finally {
      mr.close();
    }
  }
});

Deno.test("runLig() --iid asks inside an Instance-ID LCAF and shows the instance", async () => {
  const mr = await fakeMr((m) => {
    const eid = m.records[0]!.eid;
    if (eid.kind !== "iid") return [record(ipAddress("10.0.0.0"), 8, { action: 1, ttl: 1 })];
    return [
      record({ kind: "iid", iid: eid.iid, iidMaskLen: 0, address: ipAddress("10.1.0.0") }, 16, {
        locators: [locator("192.0.2.10", 1, 100)],
      }),
    ];
  });
  try {
    const c = capture();
    const base = ["10.1.2.3", "--mr", "127.0.0.1", "--port", String(mr.port), "--iid", "5"];
    assert.equal(await runLig(base, c.io), 0, c.err.join(""));
    assert.match(c.text(), /for \[5\]10\.1\.2\.3 \.\.\./);
    assert.match(
      c.text(),
      /Mapping entry for EID \[5\]10\.1\.2\.3:\n\[5\]10\.1\.0\.0\/16, record ttl/,
    );
    assert.deepEqual(mr.seen[0]!.request.records, [{
      maskLen: 32,
      eid: { kind: "iid", iid: 5, iidMaskLen: 32, address: { kind: "ipv4", ip: "10.1.2.3" } },
    }]);
    const j = capture();
    assert.equal(await runLig([...base, "--json"], j.io), 0);
    const o = JSON.parse(j.text());
    assert.equal(o.eid, "[5]10.1.2.3");
    assert.equal(o.records[0].iid, 5);
    assert.equal(o.records[0].eidPrefix, "10.1.0.0/16");
  } finally {
    mr.close();
  }
});

Deno.test("parseLigArgs() rejects bad usage with a one-line reason", () => {
  const cases: [string[], RegExp][] = [
    [["--mr", "127.0.0.1"], /give the EID/],
    [["10.1.2.3"], /--mr ADDRESS is required/],
    [["10.1.2.3", "10.1.2.4", "--mr", "127.0.0.1"], /give one EID/],
    [["ten", "--mr", "127.0.0.1"], /'ten' is not an IPv4 or IPv6 address or prefix/],
    [["10.1.2.3/33", "--mr", "127.0.0.1"], /not an IPv4 or IPv6 address or prefix/],
    [["10.1.2.3", "--mr", "mr.example"], /--mr 'mr.example' is not/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--port", "0"], /--port must be an integer from 1 to 65535/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--iid", "-1"], /--iid/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--count", "0"], /--count must be/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--timeout", "0"], /--timeout must be/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--source", "::1"], /not of the same address family/],
    [["10.1.2.3", "--mr", "127.0.0.1", "--bogus"], /bogus/],
  ];
  for (const [args, re] of cases) {
    const r = parseLigArgs(args);
    assert.equal(typeof r, "string", `${args.join(" ")} was accepted`);
    assert.match(r as string, re, args.join(" "));
  }
  assert.deepEqual(
    ligOptionsFromValues({
      mr: "::1",
      port: "4343",
      iid: "7",
      count: "1",
      timeout: "0.5",
      json: true,
    }, [
      "2001:db8::/32",
    ]),
    {
      eid: "2001:db8::/32",
      mr: "::1",
      port: 4343,
      iid: 7,
      count: 1,
      timeoutSeconds: 0.5,
      json: true,
    },
  );
});

Deno.test("runLig() exits 2 for bad usage", async () => {
  const c = capture();
  assert.equal(await runLig(["10.1.2.3"], c.io), 2);
  assert.equal(c.err.join(""), "oor lig: --mr ADDRESS is required (see oor lig --help)\n");
  assert.deepEqual(c.out, []);
});

Deno.test("routeSource() finds the address the kernel sends from", () => {
  assert.equal(routeSource("127.0.0.5"), "127.0.0.1");
  assert.equal(routeSource("::1"), "::1");
});

Deno.test("runLig() against a real ms: a registered site, an unregistered EID, non-EID space", async () => {
  const parsed = parseConfig(
    [
      'operating-mode = "MS"',
      'control-address = "127.0.0.1"',
      "control-port = 0",
      "control-rate-limit = 0",
      "[[lisp-site]]",
      'eid-prefix = "10.1.0.0/16"',
      "iid = 0",
      "key-type = 2",
      'key = "lig-test-key"',
      "accept-more-specifics = true",
      "proxy-reply = true",
      "",
    ].join("\n"),
    { role: "ms" },
  );
  assert.ok(parsed.ok, parsed.ok ? "" : parsed.errors.join("\n"));
  const silent = { write: () => {} };
  const ms = await startMs(parsed.config, {
    logger: new Logger({ role: "ms", level: "error", sink: silent }),
    counters: new Counters(),
    now: Date.now,
  });
  const etr = await ControlPlane.open({
    logger: new Logger({ role: "etr", level: "error", sink: silent }),
    counters: new Counters(),
    address: "127.0.0.1",
    port: 0,
  });
  try {
    // An ETR registers 10.1.2.0/24 with two RLOCs and asks for a Map-Notify.
    const nonce = 0xfeedn;
    const register = emitSignedMapRegister({
      proxyReply: true,
      securityCapable: false,
      xtrIdPresent: false,
      rtr: false,
      eidNotify: false,
      useTtlForTimeout: false,
      mergeRequest: false,
      mobileNode: false,
      wantMapNotify: true,
      nonce,
      keyId: KEY_ID_HMAC_SHA256_128,
      authData: new Uint8Array(0),
      records: [record(ipAddress("10.1.2.0"), 24, {
        ttl: 60,
        locators: [locator("192.0.2.21", 1, 60), locator("192.0.2.22", 1, 40)],
      })],
    }, new HmacKey(KEY_ID_HMAC_SHA256_128, "lig-test-key"));
    const to = { address: "127.0.0.1", port: ms.port };
    await etr.request(nonce, () => etr.send(register, to), "map-register", {
      retries: 2,
      timeoutMs: 500,
      expect: ["map-notify"],
    });

    const base = ["--mr", "127.0.0.1", "--port", String(ms.port), "--timeout", "1"];
    const pos = capture();
    assert.equal(await runLig(["10.1.2.3", ...base], pos.io), 0, pos.err.join(""));
    assert.match(
      pos.text(),
      /\n10\.1\.2\.0\/24, record ttl: 60 min, auth bit: \d, action: no-action\n/,
    );
    assert.match(pos.text(), / {2}192\.0\.2\.21\s+up\s+1\/60\n/);
    assert.match(pos.text(), / {2}192\.0\.2\.22\s+up\s+1\/40\n/);

    // Inside the site, not registered: negative, native-forward.
    const unreg = capture();
    assert.equal(await runLig(["10.1.200.1", ...base, "--json"], unreg.io), 0);
    const u = JSON.parse(unreg.text());
    assert.equal(u.negative, true);
    assert.equal(u.records[0].action, "native-forward");

    // Outside every site: negative, native-forward, a longer TTL.
    const hole = capture();
    assert.equal(await runLig(["192.168.7.7", ...base, "--json"], hole.io), 0);
    const h = JSON.parse(hole.text());
    assert.equal(h.negative, true);
    assert.equal(h.records[0].action, "native-forward");
    assert.ok(h.records[0].ttl > u.records[0].ttl, `${h.records[0].ttl} vs ${u.records[0].ttl}`);
  } finally {
    etr.close();
    await ms.close();
  }
});
