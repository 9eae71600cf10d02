/**
 * A role as a real process (`deno run -A main.ts ms --config FILE`): its
 * API flooded past its file-descriptor limit, stopped with a client that
 * never reads, stopped by a second signal, by SIGQUIT and the other
 * signals (SIGHUP reloads: tests/e2e/reload_sighup_test.ts), and started
 * with a soft fd limit below the hard one. Each
 * checks the process stays up (or exits in time) and logs its clean stop.
 *
 * Loopback only; the floods are bounded in count and time. Needs
 * `prlimit` (util-linux) for the fd-limit tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { parseControlMessage } from "../wire/message.ts";
import { commandsMissing, testNeeding } from "./prereq.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const PRLIMIT = commandsMissing(["prlimit"], "util-linux");

/** An `oor ms` process, its log collected. */
class Ms {
  readonly child: Deno.ChildProcess;
  readonly controlPort: number;
  readonly apiPort: number;
  readonly dir: string;
  #log = "";
  readonly #pump: Promise<void>;
  exitedAt: number | undefined;

  private constructor(child: Deno.ChildProcess, controlPort: number, apiPort: number, dir: string) {
    this.child = child;
    this.controlPort = controlPort;
    this.apiPort = apiPort;
    this.dir = dir;
    this.#pump = (async () => {
      for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) this.#log += t;
    })();
    child.status.then(() => this.exitedAt = Date.now());
  }

  /** Starts an ms with `api` lines in its `[api]`, under `prlimit --nofile=<nofile>` if given. */
  static async start(o: { api?: string[]; nofile?: string } = {}): Promise<Ms> {
    const dir = await Deno.makeTempDir({ prefix: "oor-lifecycle-" });
    const controlPort = await freeUdpPort();
    const apiPort = freeTcpPort();
    const toml = [
      'operating-mode = "MS"',
      'control-address = "127.0.0.1"',
      `control-port = ${controlPort}`,
      "control-rate-limit = 0",
      "[api]",
      `listen = "127.0.0.1:${apiPort}"`,
      ...(o.api ?? []),
      "[[lisp-site]]",
      'eid-prefix = "10.1.0.0/16"',
      "key-type = 1",
      'key = "lifecycle-key"',
    ].join("\n");
    await Deno.writeTextFile(`${dir}/ms.toml`, toml);
    const deno = [Deno.execPath(), "run", "-A", MAIN, "ms", "--config", `${dir}/ms.toml`];
    const cmd = o.nofile !== undefined ? ["prlimit", `--nofile=${o.nofile}`, "--", ...deno] : deno;
    const child = new Deno.Command(cmd[0]!, {
      args: cmd.slice(1),
      cwd: REPO,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const ms = new Ms(child, controlPort, apiPort, dir);
    const end = Date.now() + 30_000;
    while (!/ started pid=/.test(ms.log)) {
      if (ms.exitedAt !== undefined) throw new Error(`ms exited at start:\n${ms.log}`);
      if (Date.now() > end) throw new Error(`ms did not start:\n${ms.log}`);
      await delay(20);
    }
    return ms;
  }

  get log(): string {
    return this.#log;
  }

  get alive(): boolean {
    return this.exitedAt === undefined;
  }

  signal(s: Deno.Signal): number {
    const t = Date.now();
    this.child.kill(s);
    return t;
  }

  /** Waits for the exit (at most `ms`); the status, or undefined if still running. */
  async exited(ms = 10_000): Promise<Deno.CommandStatus | undefined> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      this.child.status,
      new Promise<undefined>((res) => timer = setTimeout(() => res(undefined), ms)),
    ]);
    clearTimeout(timer);
    if (r !== undefined) await this.#pump;
    return r;
  }

  /** Kills it if still running and removes its directory. */
  async dispose(): Promise<void> {
    if (this.alive) {
      try {
        this.child.kill("SIGKILL");
      } catch {
        // gone
      }
    }
    await this.child.status;
    await this.#pump;
    await Deno.remove(this.dir, { recursive: true });
  }

  /** Whether the control port answers a Map-Request (a negative Map-Reply) within `ms`. */
  async controlAnswers(ms = 2_000): Promise<boolean> {
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
    const nonce = 0x6c69_6665_6379_636cn;
    const got = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      sock.on("message", (msg: Uint8Array) => {
        try {
          const m = parseControlMessage(msg);
          if (m.type !== "ecm" && m.msg.nonce === nonce) {
            clearTimeout(timer);
            resolve(true);
          }
        } catch {
          // not ours
        }
      });
    });
    sock.send(
      emitMapRequest({
        authoritative: false,
        probe: false,
        smr: false,
        pitr: false,
        smrInvoked: false,
        localXtr: false,
        dontMapReply: false,
        nonce,
        sourceEid: NO_ADDRESS,
        itrRlocs: [ipAddress("127.0.0.1")],
        records: [{ maskLen: 32, eid: ipAddress("192.168.77.1") }],
      }),
      this.controlPort,
      "127.0.0.1",
    );
    const ok = await got;
    await new Promise<void>((r) => sock.close(() => r()));
    return ok;
  }

  /** GET `path` on the API; the status, or an error text. */
  async get(path: string): Promise<number | string> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.apiPort}${path}`, {
        signal: AbortSignal.timeout(3_000),
      });
      await res.body?.cancel();
      return res.status;
    } catch (e) {
      return e instanceof Error ? `${e.message} ${(e as Error).cause ?? ""}` : String(e);
    }
  }
}

/** Opens up to `n` connections to `port` (at most `ms` in all) and holds them. */
async function flood(port: number, n: number, ms = 10_000): Promise<Deno.Conn[]> {
  const conns: Deno.Conn[] = [];
  const end = Date.now() + ms;
  const batch = 50;
  for (let i = 0; i < n && Date.now() < end; i += batch) {
    const opened = await Promise.allSettled(
      Array.from(
        { length: Math.min(batch, n - i) },
        () => Deno.connect({ hostname: "127.0.0.1", port }),
      ),
    );
    for (const r of opened) if (r.status === "fulfilled") conns.push(r.value);
  }
  return conns;
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch {
      // closed
    }
  }
}

/** A client that asks for many large answers at once and never reads them. */
async function nonReader(port: number): Promise<Deno.Conn> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port });
  const one = `GET /?refresh=0 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;
  await c.write(new TextEncoder().encode(one.repeat(2_000)));
  return c;
}

// ---------------------------------------------------------------------------

testNeeding(PRLIMIT, {
  name:
    "an ms under prlimit --nofile=256 survives 400 API connections; its control port answers throughout",
  fn: async () => {
    const ms = await Ms.start({ nofile: "256:256" });
    let conns: Deno.Conn[] = [];
    try {
      conns = await flood(ms.apiPort, 400);
      await delay(300);
      const during = await ms.controlAnswers();
      const apiDuring = await ms.get("/api/v1/status");
      console.log(
        `  flood: ${conns.length} connections held, ms alive=${ms.alive}, control answered=${during}, ` +
          `API answered ${apiDuring}`,
      );
      assert.equal(conns.length, 400);
      assert.ok(ms.alive, `the ms died:\n${ms.log}`);
      assert.ok(during, "the control port answers during the flood");
      assert.equal(apiDuring, 503, "past max-connections the API says so");
      closeAll(conns);
      conns = [];
      // The API serves again once the flood is gone.
      const end = Date.now() + 5_000;
      let after: number | string = "";
      while (Date.now() < end && (after = await ms.get("/api/v1/status")) !== 200) await delay(100);
      assert.equal(after, 200);
      assert.match(ms.log, / api-connections-refused max-connections=64 /);
      ms.signal("SIGTERM");
      assert.equal((await ms.exited())?.code, 0);
      assert.match(ms.log, / stopped\n/);
    } finally {
      closeAll(conns);
      await ms.dispose();
    }
  },
});

testNeeding(PRLIMIT, {
  name:
    "an ms whose max-connections is above its fd limit survives accept errors (EMFILE) and serves again",
  fn: async () => {
    const ms = await Ms.start({ nofile: "256:256", api: ["max-connections = 5000"] });
    let conns: Deno.Conn[] = [];
    try {
      conns = await flood(ms.apiPort, 400);
      await delay(500);
      const during = await ms.controlAnswers();
      console.log(
        `  flood past the fd limit: ${conns.length} connections, ms alive=${ms.alive}, ` +
          `control answered=${during}`,
      );
      assert.ok(ms.alive, `the ms died:\n${ms.log}`);
      assert.ok(during, "the control port answers while accept() fails");
      assert.match(ms.log, / api-accept-failed reason="Too many open files/);
      closeAll(conns);
      conns = [];
      const end = Date.now() + 10_000;
      let after: number | string = "";
      while (Date.now() < end && (after = await ms.get("/api/v1/status")) !== 200) await delay(100);
      assert.equal(after, 200, "the API serves again");
      ms.signal("SIGTERM");
      assert.equal((await ms.exited())?.code, 0);
    } finally {
      closeAll(conns);
      await ms.dispose();
    }
  },
});

testNeeding(PRLIMIT, {
  name: "a role runs with its soft fd limit at the hard one, and logs both",
  fn: async () => {
    const ms = await Ms.start({ nofile: "256:4096" });
    try {
      const limits = await Deno.readTextFile(`/proc/${ms.child.pid}/limits`);
      assert.match(limits, /Max open files\s+4096\s+4096/);
      // Deno's runtime raises it before main.ts runs; the role checks and logs it.
      assert.match(ms.log, / info {2}ms fd-limit soft=4096 hard=4096\n/);
      ms.signal("SIGTERM");
      assert.equal((await ms.exited())?.code, 0);
    } finally {
      await ms.dispose();
    }
  },
});

Deno.test("SIGTERM stops a role within 3 s while a client never reads its answers", async () => {
  const ms = await Ms.start();
  let c: Deno.Conn | undefined;
  try {
    c = await nonReader(ms.apiPort);
    await delay(1_000); // the server is now blocked writing to it
    const t0 = ms.signal("SIGTERM");
    const status = await ms.exited(10_000);
    const took = (ms.exitedAt ?? Date.now()) - t0;
    console.log(`  stop with a non-reading client: ${took} ms, exit ${status?.code}`);
    assert.ok(status !== undefined, `still running 10 s after SIGTERM:\n${ms.log}`);
    assert.equal(status.code, 0);
    assert.ok(took < 3_000, `took ${took} ms`);
    assert.match(ms.log, / stopping signal=SIGTERM\n/);
    assert.match(ms.log, / stopped\n/);
  } finally {
    if (c) closeAll([c]);
    await ms.dispose();
  }
});

Deno.test("a second signal cuts the API's grace short; the role still stops cleanly", async () => {
  const ms = await Ms.start();
  let c: Deno.Conn | undefined;
  try {
    c = await nonReader(ms.apiPort);
    await delay(1_000);
    const t0 = ms.signal("SIGINT");
    await delay(100);
    ms.signal("SIGINT");
    const status = await ms.exited(10_000);
    const took = (ms.exitedAt ?? Date.now()) - t0;
    console.log(`  stop with a second signal 100 ms later: ${took} ms`);
    assert.equal(status?.code, 0);
    assert.ok(took < 800, `took ${took} ms (the grace is 1 s)`);
    assert.match(ms.log, / stop-hurried by=SIGINT\n/);
    assert.match(ms.log, / stopped\n/);
  } finally {
    if (c) closeAll([c]);
    await ms.dispose();
  }
});

Deno.test("SIGQUIT and SIGUSR1 stop a role cleanly, exit 0", async () => {
  for (const s of ["SIGQUIT", "SIGUSR1"] as const) {
    const ms = await Ms.start();
    try {
      ms.signal(s);
      const status = await ms.exited(5_000);
      assert.equal(status?.code, 0, `${s}:\n${ms.log}`);
      assert.equal(status?.signal, null);
      assert.match(ms.log, new RegExp(` stopping signal=${s}\\n`));
      assert.match(ms.log, / stopped\n/);
    } finally {
      await ms.dispose();
    }
  }
});

Deno.test("the API of a role on loopback refuses a request for another Host (DNS rebinding)", async () => {
  const ms = await Ms.start();
  try {
    const ask = async (host: string) => {
      const c = await Deno.connect({ hostname: "127.0.0.1", port: ms.apiPort });
      try {
        await c.write(new TextEncoder().encode(
          `GET /api/v1/sites HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
        ));
        return await new Response(c.readable).text();
      } catch (e) {
        return String(e);
      }
    };
    assert.match(await ask(`127.0.0.1:${ms.apiPort}`), /^HTTP\/1\.1 200 /);
    assert.match(await ask(`localhost:${ms.apiPort}`), /^HTTP\/1\.1 200 /);
    const refused = await ask(`rebind.attacker.example:${ms.apiPort}`);
    assert.match(refused, /^HTTP\/1\.1 403 /);
    assert.doesNotMatch(refused, /10\.1\.0\.0/, "no site in the answer");
    ms.signal("SIGTERM");
    assert.equal((await ms.exited())?.code, 0);
  } finally {
    await ms.dispose();
  }
});
