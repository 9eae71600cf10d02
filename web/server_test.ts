import assert from "node:assert/strict";
import { Hono } from "hono";
import { type ApiLimits, type ApiServer, startApi } from "./server.ts";

// ---------------------------------------------------------------------------
// A small app and raw TCP clients.

function testApp(): Hono {
  const app = new Hono();
  app.get("/hello", (c) => c.json({ hello: "world" }));
  app.get("/big", (c) => c.text("x".repeat(1 << 20)));
  app.get("/slow", async (c) => {
    await new Promise((r) => setTimeout(r, 300));
    return c.json({ slow: true });
  });
  app.post("/echo", async (c) => c.json({ got: await c.req.text() }));
  app.get("/host", (c) => c.json({ host: c.req.header("host") ?? null, url: c.req.url }));
  return app;
}

async function serve(limits: Partial<ApiLimits> = {}): Promise<ApiServer> {
  return await startApi(testApp(), { host: "127.0.0.1", port: 0, limits });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Reads until the peer closes (or `ms` pass: then "TIMEOUT" is appended). */
async function readAll(conn: Deno.Conn, ms = 5_000): Promise<string> {
  let text = "";
  const buf = new Uint8Array(65536);
  const end = Date.now() + ms;
  for (;;) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"t">((r) => timer = setTimeout(() => r("t"), Math.max(1, end - Date.now()))),
    ]);
    clearTimeout(timer);
    if (n === "t") return text + "TIMEOUT";
    if (n === null) return text;
    text += dec.decode(buf.subarray(0, n));
  }
}

/** Reads until `text` has `count` complete responses' status lines (or the peer closes). */
async function readUntil(conn: Deno.Conn, pattern: RegExp, ms = 5_000): Promise<string> {
  let text = "";
  const buf = new Uint8Array(65536);
  const end = Date.now() + ms;
  while (!pattern.test(text)) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"t">((r) => timer = setTimeout(() => r("t"), Math.max(1, end - Date.now()))),
    ]);
    clearTimeout(timer);
    if (n === "t" || n === null) break;
    text += dec.decode(buf.subarray(0, n));
  }
  return text;
}

function connect(s: ApiServer): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname: "127.0.0.1", port: s.port });
}

function closeQuietly(c: Deno.Conn): void {
  try {
    c.close();
  } catch {
    // closed
  }
}

const GET_HELLO = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// ---------------------------------------------------------------------------

Deno.test("startApi() serves keep-alive, pipelined, HEAD and chunked requests", async () => {
  const s = await serve();
  try {
    // fetch() (keep-alive) twice.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${s.url}hello`);
      assert.deepEqual(await r.json(), { hello: "world" });
    }
    const c = await connect(s);
    try {
      // Two pipelined requests, the second closing the connection.
      await c.write(enc.encode(
        GET_HELLO + "HEAD /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
      ));
      const text = await readAll(c);
      assert.equal(text.match(/HTTP\/1\.1 200 OK/g)?.length, 2, text);
      assert.equal(text.match(/\{"hello":"world"\}/g)?.length, 1, "HEAD has no body");
      assert.match(text, /connection: close\r\n\r\n$/);
    } finally {
      closeQuietly(c);
    }
    const d = await connect(s);
    try {
      await d.write(enc.encode(
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
          "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: 1\r\n\r\n",
      ));
      assert.match(await readAll(d), /\{"got":"abcdefg"\}$/);
    } finally {
      closeQuietly(d);
    }
    // Expect: 100-continue gets its interim answer before the body is sent.
    const e = await connect(s);
    try {
      await e.write(enc.encode(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n" +
          "Connection: close\r\n\r\n",
      ));
      assert.match(await readUntil(e, /100 Continue\r\n\r\n/), /^HTTP\/1\.1 100 Continue/);
      await e.write(enc.encode("hi"));
      assert.match(await readAll(e), /\{"got":"hi"\}$/);
    } finally {
      closeQuietly(e);
    }
  } finally {
    await s.close();
  }
});

Deno.test("startApi() answers 400, 413, 431, 501 and 505 to bad requests and closes", async () => {
  const s = await serve({ maxHeadBytes: 1024, maxBodyBytes: 100 });
  try {
    const cases: [string, RegExp][] = [
      ["GARBAGE\r\n\r\n", /^HTTP\/1\.1 400 .*malformed request line/s],
      ["GET /hello HTTP/1.1\r\n\r\n", /^HTTP\/1\.1 400 .*exactly one Host/s],
      ["GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /^HTTP\/1\.1 400 /],
      ["GET /hello HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /^HTTP\/1\.1 400 .*folding/s],
      [
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        /^HTTP\/1\.1 400 .*both Content-Length/s,
      ],
      [
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        /^HTTP\/1\.1 400 .*Content-Length/s,
      ],
      ["POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", /^HTTP\/1\.1 413 /],
      [
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n" +
        "x".repeat(101) + "\r\n0\r\n\r\n",
        /^HTTP\/1\.1 413 /,
      ],
      [`GET /hello HTTP/1.1\r\nHost: a\r\nX: ${"y".repeat(2000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
      ["POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", /^HTTP\/1\.1 501 /],
      ["GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", /^HTTP\/1\.1 505 /],
      ["GET * HTTP/1.1\r\nHost: a\r\n\r\n", /^HTTP\/1\.1 400 /],
    ];
    for (const [request, expect] of cases) {
      const c = await connect(s);
      try {
        await c.write(enc.encode(request));
        const text = await readAll(c);
        assert.match(text, expect, JSON.stringify(request.slice(0, 80)));
        assert.doesNotMatch(text, /TIMEOUT$/, "the connection is closed after the error");
      } finally {
        closeQuietly(c);
      }
    }
    // Still serving.
    assert.equal((await fetch(`${s.url}hello`)).status, 200);
  } finally {
    await s.close();
  }
});

Deno.test("startApi() builds the request URL from its own address, not from the Host header", async () => {
  const s = await serve();
  try {
    const c = await connect(s);
    try {
      await c.write(enc.encode(
        "GET /host?a=1 HTTP/1.1\r\nHost: evil.example:80\r\nConnection: close\r\n\r\n",
      ));
      const body = JSON.parse((await readAll(c)).split("\r\n\r\n")[1]!);
      assert.equal(body.host, "evil.example:80");
      assert.equal(body.url, `http://127.0.0.1:${s.port}/host?a=1`);
    } finally {
      closeQuietly(c);
    }
  } finally {
    await s.close();
  }
});

Deno.test("startApi() serves at most max-connections at once and answers 503 past them", async () => {
  const s = await serve({ maxConnections: 4 });
  const held: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 4; i++) held.push(await connect(s));
    // The four are served: each gets an answer.
    for (const c of held) {
      await c.write(enc.encode(GET_HELLO));
      assert.match(await readUntil(c, /\}$/), /^HTTP\/1\.1 200 /);
    }
    const extra = await connect(s);
    try {
      await extra.write(enc.encode(GET_HELLO));
      const text = await readAll(extra, 3_000);
      assert.match(text, /^HTTP\/1\.1 503 .*serves 4 connections at once/s);
    } finally {
      closeQuietly(extra);
    }
    // Ten that send nothing are closed without an answer, within 250 ms; a client
    // behind them still gets its 503 (fetch() too: the answer comes after its request).
    const silent = await Promise.all(Array.from({ length: 10 }, () => connect(s)));
    try {
      const t0 = Date.now();
      const answered = fetch(`${s.url}hello`);
      assert.deepEqual(await Promise.all(silent.map((c) => readAll(c, 3_000))), Array(10).fill(""));
      assert.ok(Date.now() - t0 < 1_000);
      assert.equal((await answered).status, 503);
    } finally {
      for (const c of silent) closeQuietly(c);
    }
    assert.equal(s.stats().open, 4);
    assert.equal(s.stats().refused, 12);
    // One closes: a new connection is served again.
    closeQuietly(held.shift()!);
    const end = Date.now() + 2_000;
    while (s.stats().open > 3 && Date.now() < end) await delay(10);
    const again = await connect(s);
    try {
      await again.write(enc.encode(GET_HELLO.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")));
      assert.match(await readAll(again), /^HTTP\/1\.1 200 /);
    } finally {
      closeQuietly(again);
    }
  } finally {
    for (const c of held) closeQuietly(c);
    await s.close();
  }
});

Deno.test("startApi() closes a silent connection after idle-timeout, between requests too", async () => {
  const s = await serve({ idleTimeoutMs: 300 });
  try {
    const c = await connect(s);
    try {
      const t0 = Date.now();
      const text = await readAll(c, 3_000);
      const took = Date.now() - t0;
      assert.equal(text, "", "closed without an answer");
      assert.ok(took >= 250 && took < 1_500, `closed after ${took} ms`);
    } finally {
      closeQuietly(c);
    }
    const d = await connect(s);
    try {
      await d.write(enc.encode(GET_HELLO));
      const t0 = Date.now();
      const text = await readAll(d, 3_000);
      const took = Date.now() - t0;
      assert.match(text, /^HTTP\/1\.1 200 .*\}$/s);
      assert.ok(took >= 250 && took < 1_500, `closed ${took} ms after the answer`);
    } finally {
      closeQuietly(d);
    }
    assert.equal(s.stats().timedOut, 2);
  } finally {
    await s.close();
  }
});

Deno.test("startApi() answers 408 to a request still incomplete after request-timeout, even one sent a byte at a time", async () => {
  const s = await serve({ idleTimeoutMs: 5_000, requestTimeoutMs: 400 });
  try {
    // Half a head, then nothing.
    const c = await connect(s);
    try {
      await c.write(enc.encode("GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\n"));
      const t0 = Date.now();
      const text = await readAll(c, 3_000);
      const took = Date.now() - t0;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(took >= 350 && took < 1_500, `closed after ${took} ms`);
    } finally {
      closeQuietly(c);
    }
    // A byte every 50 ms: the deadline counts from the first byte.
    const d = await connect(s);
    let sent = 0;
    const bytes = enc.encode(`GET /hello HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: ${"p".repeat(100)}`);
    const reading = readAll(d, 5_000);
    try {
      const t0 = Date.now();
      for (; sent < bytes.length; sent++) {
        try {
          await d.write(bytes.subarray(sent, sent + 1));
        } catch {
          break;
        }
        await delay(50);
        if (Date.now() - t0 > 3_000) break;
      }
      const text = await reading;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(sent < 20, `closed after ${sent} bytes`);
    } finally {
      closeQuietly(d);
    }
    // A body that does not come.
    const e = await connect(s);
    try {
      await e.write(enc.encode("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"));
      assert.match(await readAll(e, 3_000), /^HTTP\/1\.1 408 /);
    } finally {
      closeQuietly(e);
    }
  } finally {
    await s.close();
  }
});

Deno.test("startApi() drops an answer the client does not read within request-timeout", async () => {
  const s = await serve({ requestTimeoutMs: 500 });
  try {
    const c = await connect(s);
    try {
      // Many pipelined requests for 1 MiB each, never read.
      await c.write(enc.encode(`GET /big HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(64)));
      const end = Date.now() + 5_000;
      while (s.stats().open > 0 && Date.now() < end) await delay(20);
      assert.equal(s.stats().open, 0, "the connection was closed");
      assert.ok(s.stats().timedOut >= 1);
    } finally {
      closeQuietly(c);
    }
  } finally {
    await s.close();
  }
});

Deno.test("ApiServer.close() ends within its grace however clients behave", async () => {
  const s = await serve({ requestTimeoutMs: 60_000, idleTimeoutMs: 60_000 });
  const clients: Deno.Conn[] = [];
  try {
    // One idle, one half-sent, one that never reads a large answer, one waiting on a slow handler.
    clients.push(await connect(s));
    const half = await connect(s);
    await half.write(enc.encode("GET /hello HTTP/1.1\r\n"));
    clients.push(half);
    const stuck = await connect(s);
    await stuck.write(enc.encode(`GET /big HTTP/1.1\r\nHost: a\r\n\r\n`.repeat(64)));
    clients.push(stuck);
    const slow = await connect(s);
    await slow.write(enc.encode("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
    clients.push(slow);
    const slowAnswer = readAll(slow, 5_000);
    await delay(200);
    assert.equal(s.stats().open, 4);
    const t0 = Date.now();
    await s.close(700);
    const took = Date.now() - t0;
    assert.ok(took < 1_200, `close() took ${took} ms`);
    // The slow request finished within the grace, with Connection: close.
    assert.match(await slowAnswer, /^HTTP\/1\.1 200 .*connection: close\r\n\r\n\{"slow":true\}$/s);
    assert.equal(s.stats().open, 0);
    await assert.rejects(connect(s));
  } finally {
    for (const c of clients) closeQuietly(c);
    await s.close();
  }
});

Deno.test("ApiServer.close() returns at once with no connection open", async () => {
  const s = await serve();
  assert.equal((await fetch(`${s.url}hello`, { headers: { connection: "close" } })).status, 200);
  const t0 = Date.now();
  await s.close();
  assert.ok(Date.now() - t0 < 200);
});
