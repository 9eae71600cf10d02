import assert from "node:assert/strict";
import { ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { emitMapRequest, type MapRequest } from "../wire/map_request.ts";
import {
  ControlPlane,
  type ControlTransportFactory,
  dgramTransport,
  NoReplyError,
  type Peer,
  type Received,
} from "./control.ts";
import { batchedTransport } from "../roles/control_io/socket.ts";
import { Counters } from "./counters.ts";
import { Logger } from "./log.ts";

// ---------------------------------------------------------------------------
// Helpers

/** The transport the test running now uses: every test runs once with each. */
let transport: ControlTransportFactory = dgramTransport;

const TRANSPORTS: readonly [string, ControlTransportFactory][] = [
  ["node:dgram", dgramTransport],
  ["batched", batchedTransport],
];

/** Registers `fn` once per transport (tests of one file run one at a time). */
function test(name: string, fn: () => Promise<void>): void {
  for (const [label, t] of TRANSPORTS) {
    Deno.test(`${name} (${label})`, async () => {
      transport = t;
      await fn();
    });
  }
}

interface Node {
  readonly cp: ControlPlane;
  readonly counters: Counters;
  readonly lines: string[];
  readonly peer: Peer;
}

async function node(
  opts: { address?: string; rateLimit?: number; now?: () => number } = {},
): Promise<Node> {
  const lines: string[] = [];
  const counters = new Counters();
  const now = opts.now ?? Date.now;
  const address = opts.address ?? "127.0.0.1";
  const cp = await ControlPlane.open({
    logger: new Logger({
      role: "test",
      level: "debug",
      now,
      sink: { write: (l) => lines.push(l) },
    }),
    counters,
    address,
    port: 0,
    now,
    transport,
    ...(opts.rateLimit !== undefined ? { rateLimit: opts.rateLimit } : {}),
  });
  return { cp, counters, lines, peer: { address, port: cp.port } };
}

/** Waits until `cond()` holds (polling), or fails after `ms`. */
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function mapRequest(nonce: bigint, itr = "127.0.0.1"): MapRequest {
  return {
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: NO_ADDRESS,
    itrRlocs: [ipAddress(itr)],
    records: [{ maskLen: 32, eid: ipAddress("10.1.1.1") }],
  };
}

/** Makes `server` answer every Map-Request with an empty Map-Reply (nonce copied). */
function answerRequests(server: Node, skip = 0): { seen: number } {
  const state = { seen: 0 };
  server.cp.on("map-request", (m, r) => {
    state.seen++;
    if (state.seen <= skip) return;
    server.cp.send({
      type: "map-reply",
      msg: {
        probe: false,
        echoNonce: false,
        security: false,
        nonce: m.nonce,
        records: [],
      },
    }, r.from);
  });
  return state;
}

const REQUEST = { retries: 3, timeoutMs: 150, expect: ["map-reply" as const] };

// ---------------------------------------------------------------------------
// Tests

test("request() resolves with the reply that carries its nonce and counts a retransmission", async () => {
  const server = await node();
  const client = await node();
  try {
    const state = answerRequests(server, 1);
    const nonce = 0x0123_4567_89ab_cdefn;
    const bytes = emitMapRequest(mapRequest(nonce));
    const got = await client.cp.request(
      nonce,
      () => client.cp.send(bytes, server.peer),
      "map-request",
      REQUEST,
    );
    assert.equal(got.message.type, "map-reply");
    assert.equal(got.message.type === "map-reply" && got.message.msg.nonce, nonce);
    assert.deepEqual(got.from, server.peer);
    assert.equal(state.seen, 2, "the first send was ignored, the retransmission answered");
    assert.equal(client.counters.get("oor_control_retransmits_total"), 1);
    assert.equal(client.counters.get("oor_control_timeouts_total"), 0);
    assert.equal(client.cp.pendingCount, 0);
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("request() with from takes the reply only from that address; another source's is dropped as wrong-source", async () => {
  const server = await node();
  const impostor = await node({ address: "127.0.0.2" });
  const client = await node();
  try {
    const nonce = 0x77n;
    const reply = (from: Node) =>
      from.cp.send({
        type: "map-reply",
        msg: { probe: false, echoNonce: false, security: false, nonce, records: [] },
      }, client.peer);
    const got = client.cp.request(nonce, () => {}, "map-request", {
      ...REQUEST,
      timeoutMs: 2000,
      from: server.peer.address,
    });
    reply(impostor);
    await until(
      () => client.counters.get("oor_control_dropped_total", { reason: "wrong-source" }) === 1,
      "the impostor's reply dropped",
    );
    assert.equal(client.cp.pendingCount, 1, "still waiting");
    reply(server);
    assert.deepEqual((await got).from, server.peer);
    assert.equal(client.cp.pendingCount, 0);
  } finally {
    await server.cp.close();
    await impostor.cp.close();
    await client.cp.close();
  }
});

test("takeUnread() takes a type's plain messages unread: counted by type, never parsed nor dispatched", async () => {
  const a = await node();
  const b = await node();
  try {
    const taken: string[] = [];
    let handled = 0;
    b.cp.on("map-reply", () => void handled++);
    b.cp.takeUnread(2, (from) => taken.push(from.address));
    a.cp.send({
      type: "map-reply",
      msg: { probe: false, echoNonce: false, security: false, nonce: 3n, records: [] },
    }, b.peer);
    // Not even a whole header: not "malformed", as nothing reads it.
    a.cp.send(new Uint8Array([0x20, 0, 0]), b.peer);
    await until(() => taken.length === 2, "both taken");
    assert.deepEqual(taken, [a.peer.address, a.peer.address]);
    assert.equal(handled, 0);
    assert.equal(b.counters.get("oor_control_messages_in_total", { type: "map-reply" }), 2);
    assert.equal(b.counters.get("oor_control_messages_in_total", { type: "malformed" }), 0);
    // Another type still goes through the parser.
    a.cp.send(new Uint8Array([0x60, 0, 0]), b.peer);
    await until(
      () => b.counters.get("oor_control_messages_in_total", { type: "malformed" }) === 1,
      "a malformed Map-Referral",
    );
  } finally {
    await a.cp.close();
    await b.cp.close();
  }
});

test("request() makes a `what` given as a function only for the error of a request that fails", async () => {
  const server = await node();
  const client = await node();
  try {
    answerRequests(server, Infinity);
    let made = 0;
    const what = () => {
      made++;
      return "the DDT Map-Request for 10.1.2.3/32";
    };
    const bytes = emitMapRequest(mapRequest(8n));
    await assert.rejects(
      client.cp.request(8n, () => client.cp.send(bytes, server.peer), what, {
        ...REQUEST,
        retries: 0,
        timeoutMs: 40,
      }),
      (e) =>
        e instanceof NoReplyError &&
        e.message === "no reply to the DDT Map-Request for 10.1.2.3/32",
    );
    assert.equal(made, 1);
    // Answered: never made.
    const nonce = 9n;
    const got = client.cp.request(nonce, () => {}, what, { ...REQUEST, timeoutMs: 2000 });
    server.cp.send({
      type: "map-reply",
      msg: { probe: false, echoNonce: false, security: false, nonce, records: [] },
    }, client.peer);
    await got;
    assert.equal(made, 1);
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("request() rejects with NoReplyError after its retries and counts the timeout", async () => {
  const server = await node();
  const client = await node();
  try {
    const state = answerRequests(server, Infinity);
    const nonce = 7n;
    const bytes = emitMapRequest(mapRequest(nonce));
    await assert.rejects(
      client.cp.request(nonce, () => client.cp.send(bytes, server.peer), "map-request", {
        ...REQUEST,
        retries: 2,
        timeoutMs: 40,
      }),
      NoReplyError,
    );
    await until(() => state.seen === 3, "three sends");
    assert.equal(client.counters.get("oor_control_retransmits_total"), 2);
    assert.equal(client.counters.get("oor_control_timeouts_total"), 1);
    assert.equal(client.cp.pendingCount, 0);
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("request() refuses a nonce that is already outstanding", async () => {
  const server = await node();
  const client = await node();
  try {
    answerRequests(server);
    const nonce = 42n;
    const bytes = emitMapRequest(mapRequest(nonce));
    const send = () => client.cp.send(bytes, server.peer);
    const first = client.cp.request(nonce, send, "first", REQUEST);
    await assert.rejects(client.cp.request(nonce, send, "second", REQUEST), RangeError);
    await first;
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("a reply whose nonce nobody waits for is dropped and counted", async () => {
  const server = await node();
  const client = await node();
  try {
    for (const nonce of [0x99n, 0x9an]) {
      server.cp.send({
        type: "map-reply",
        msg: { probe: false, echoNonce: false, security: false, nonce, records: [] },
      }, client.peer);
    }
    await until(
      () => client.counters.get("oor_control_dropped_total", { reason: "unknown-nonce" }) === 2,
      "two unknown-nonce drops",
    );
    assert.equal(client.counters.get("oor_control_messages_in_total", { type: "map-reply" }), 2);
    assert.equal(
      client.lines.filter((l) => l.includes("unknown-nonce")).length,
      1,
      "logged once per source per minute",
    );
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("requests beyond the per-source rate are dropped and counted; the bucket refills with time", async () => {
  let now = 1_000_000;
  const server = await node({ rateLimit: 5, now: () => now });
  const client = await node();
  const other = await node({ address: "127.0.0.2" });
  try {
    let handled = 0;
    server.cp.on("map-request", () => void handled++);
    const bytes = emitMapRequest(mapRequest(1n));
    const dropped = () =>
      server.counters.get("oor_control_dropped_total", { reason: "rate-limited" });
    for (let i = 0; i < 15; i++) client.cp.send(bytes, server.peer);
    await until(() => handled + dropped() === 15, "15 requests seen");
    assert.equal(handled, 10, "a burst of twice the rate passes");
    assert.equal(dropped(), 5);
    other.cp.send(bytes, server.peer);
    await until(() => handled === 11, "another source is not limited");
    now += 1000;
    for (let i = 0; i < 7; i++) client.cp.send(bytes, server.peer);
    await until(() => handled + dropped() === 23, "7 more requests seen");
    assert.equal(handled, 16, "one second refilled 5 tokens");
    assert.equal(dropped(), 7);
  } finally {
    await server.cp.close();
    await client.cp.close();
    await other.cp.close();
  }
});

test("a malformed datagram is counted and logged, and the socket keeps serving", async () => {
  const server = await node();
  const client = await node();
  try {
    answerRequests(server);
    const good = emitMapRequest(mapRequest(5n));
    const bad = [
      new Uint8Array([0xf0, 0, 0, 0]), // type 15: no codec
      good.subarray(0, good.length - 3), // truncated Map-Request
      new Uint8Array(0), // empty
    ];
    for (const b of bad) client.cp.send(b, server.peer);
    await until(
      () => server.counters.get("oor_control_dropped_total", { reason: "malformed" }) === 3,
      "three malformed drops",
    );
    assert.equal(server.counters.get("oor_control_messages_in_total", { type: "malformed" }), 3);
    assert.equal(server.lines.filter((l) => l.includes("malformed")).length, 1);
    const got = await client.cp.request(
      5n,
      () => client.cp.send(good, server.peer),
      "map-request",
      REQUEST,
    );
    assert.equal(got.message.type, "map-reply");
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("an ECM is opened: the handler gets the inner message, the ECM header and the outer source", async () => {
  const server = await node();
  const client = await node();
  try {
    const got: Received[] = [];
    server.cp.on("map-request", (_m, r) => void got.push(r));
    client.cp.sendEcm(
      emitMapRequest(mapRequest(9n)),
      { src: "192.0.2.1", dst: "10.1.1.1", srcPort: 5555, dstPort: 4342 },
      server.peer,
      { ddtOriginated: true },
    );
    await until(() => got.length === 1, "the ECM");
    const r = got[0]!;
    assert.equal(r.message.type, "map-request");
    assert.equal(r.message.type === "map-request" && r.message.msg.nonce, 9n);
    assert.deepEqual(r.from, client.peer);
    assert.equal(r.ecm?.ddtOriginated, true);
    assert.deepEqual(r.ecm?.inner, {
      src: "192.0.2.1",
      dst: "10.1.1.1",
      srcPort: 5555,
      dstPort: 4342,
      ttl: 64,
      tos: 0,
      identification: 0,
      dontFragment: true,
      zeroUdpChecksum: false,
    });
    assert.deepEqual(
      new Uint8Array(r.bytes),
      emitMapRequest(mapRequest(9n)),
      "bytes are the inner message",
    );
    assert.equal(
      server.counters.get("oor_control_messages_in_total", { type: "ecm-map-request" }),
      1,
    );
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("a handler that throws is counted and does not stop the socket", async () => {
  const server = await node();
  const client = await node();
  try {
    let calls = 0;
    server.cp.on("map-request", (_m, r): Promise<void> | void => {
      calls++;
      if (calls === 1) throw new Error("boom");
      if (calls === 2) return Promise.reject(new Error("async boom"));
      server.cp.send({
        type: "map-reply",
        msg: { probe: false, echoNonce: false, security: false, nonce: 3n, records: [] },
      }, r.from);
    });
    const bytes = emitMapRequest(mapRequest(3n));
    client.cp.send(bytes, server.peer);
    client.cp.send(bytes, server.peer);
    await until(
      () => server.counters.get("oor_control_dropped_total", { reason: "handler-error" }) === 2,
      "two handler errors",
    );
    const got = await client.cp.request(3n, () => client.cp.send(bytes, server.peer), "x", REQUEST);
    assert.equal(got.message.type, "map-reply");
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("a message type without a handler is dropped as unhandled", async () => {
  const server = await node();
  const client = await node();
  try {
    client.cp.send(emitMapRequest(mapRequest(1n)), server.peer);
    await until(
      () => server.counters.get("oor_control_dropped_total", { reason: "unhandled" }) === 1,
      "an unhandled drop",
    );
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("the control plane works over IPv6 loopback", async () => {
  const server = await node({ address: "::1" });
  const client = await node({ address: "::1" });
  try {
    answerRequests(server);
    const bytes = emitMapRequest(mapRequest(11n, "::1"));
    const got = await client.cp.request(
      11n,
      () => client.cp.send(bytes, server.peer),
      "map-request",
      REQUEST,
    );
    assert.deepEqual(got.from, server.peer);
    // No IPv4 socket: sending to an IPv4 address is counted, not thrown.
    client.cp.send(bytes, { address: "127.0.0.1", port: server.peer.port });
    assert.equal(client.counters.get("oor_control_send_errors_total", { reason: "no-socket" }), 1);
  } finally {
    await server.cp.close();
    await client.cp.close();
  }
});

test("send() after close() is counted, not thrown", async () => {
  const a = await node();
  await a.cp.close();
  a.cp.send(emitMapRequest(mapRequest(1n)), { address: "127.0.0.1", port: 9 });
  assert.equal(a.counters.get("oor_control_send_errors_total", { reason: "no-socket" }), 1);
});

test("send() to port 0 or an address family without a socket is counted and logged once per reason, not thrown", async () => {
  const a = await node(); // IPv4 only
  try {
    const req = emitMapRequest(mapRequest(1n));
    // Destinations a peer chose: the ITR-RLOC and the ECM's inner source port.
    for (const address of ["127.0.0.1", "127.0.0.2", "127.0.0.3"]) {
      a.cp.send(req, { address, port: 0 });
    }
    for (const address of ["::1", "2001:db8::1"]) a.cp.send(req, { address, port: 4342 });
    assert.equal(
      a.counters.get("oor_control_send_errors_total", { reason: "bad-destination" }),
      3,
    );
    assert.equal(a.counters.get("oor_control_send_errors_total", { reason: "no-socket" }), 2);
    assert.equal(a.counters.get("oor_control_messages_out_total", { type: "map-request" }), 0);
    const logged = a.lines.filter((l) => l.includes(" control-send-failed "));
    assert.equal(logged.length, 2, logged.join(""));
    for (const l of logged) assert.match(l, /^\S+ warn /);
  } finally {
    await a.cp.close();
  }
});

test("request() rejects with what a throwing send throws, on a retransmission too, and frees the nonce", async () => {
  const client = await node();
  try {
    await assert.rejects(
      client.cp.request(
        1n,
        () => {
          throw new TypeError("bad send");
        },
        "x",
        REQUEST,
      ),
      TypeError,
    );
    assert.equal(client.cp.pendingCount, 0);
    let sends = 0;
    await assert.rejects(
      client.cp.request(
        1n,
        () => {
          if (++sends === 2) throw new RangeError("bad retransmission");
        },
        "x",
        { ...REQUEST, timeoutMs: 10 },
      ),
      RangeError,
    );
    assert.equal(client.cp.pendingCount, 0);
  } finally {
    await client.cp.close();
  }
});

test("close() fails every outstanding request at once and leaves no timer behind", async () => {
  const client = await node();
  const nonces = [21n, 22n, 23n];
  const settled = nonces.map((n) =>
    client.cp.request(n, () => {}, `request ${n}`, { ...REQUEST, retries: 3, timeoutMs: 60_000 })
      .then(() => undefined, (e: Error) => e)
  );
  assert.equal(client.cp.pendingCount, 3);
  const start = performance.now();
  await client.cp.close();
  for (const e of await Promise.all(settled)) {
    assert.ok(e instanceof NoReplyError && /closed/.test(e.message), String(e));
  }
  // Not at their next timeout, a minute away (the op sanitizer sees no timer left either).
  assert.ok(performance.now() - start < 1000);
  assert.equal(client.cp.pendingCount, 0);
});
