/**
 * A `[[lisp-site]]` added through the API of a real `oor ms` process (on
 * its answering Workers) takes Map-Registers at once, and is still there
 * after `kill -9` and a restart: its Map-Registers are answered with a
 * Map-Notify before the edit, never; after it, and after the restart,
 * always. A static registration added the same way answers Map-Requests
 * and survives the restart too. A bad body changes nothing.
 *
 * Loopback only.
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { addressToString, ipAddress, NO_ADDRESS } from "../wire/address.ts";
import { HmacKey } from "../wire/auth.ts";
import { ACTION, type EidRecord } from "../wire/eid_record.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { locatorRecord } from "../wire/locator.ts";
import { parseControlMessage } from "../wire/message.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { NOT_EID_TTL, NOT_REGISTERED_TTL } from "../roles/ms.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;
const TOKEN = "site-edit-token";
const NEW_KEY = "added-at-run-time";

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

/** An `oor ms` process on a config file, its log collected. */
class MsProcess {
  readonly child: Deno.ChildProcess;
  log = "";
  readonly #pump: Promise<void>;

  constructor(config: string) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "ms", "--config", config],
      cwd: REPO,
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", OOR_API_TOKEN: "" },
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.child = child;
    this.#pump = (async () => {
      for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) this.log += t;
    })();
  }

  async started(): Promise<void> {
    const end = Date.now() + 30_000;
    while (!/ started pid=/.test(this.log)) {
      if (Date.now() > end) throw new Error(`ms did not start:\n${this.log}`);
      await delay(20);
    }
  }

  async kill9(): Promise<void> {
    this.child.kill("SIGKILL");
    await this.child.status;
    await this.#pump;
  }

  async stop(): Promise<Deno.CommandStatus> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // gone
    }
    const s = await this.child.status;
    await this.#pump;
    return s;
  }
}

/** A UDP socket that sends control messages to the ms and collects what comes back. */
class Xtr {
  readonly sock = dgram.createSocket("udp4");
  readonly got: Uint8Array[] = [];
  #nonce = 100n;

  async open(): Promise<void> {
    this.sock.on("message", (m: Uint8Array) => this.got.push(new Uint8Array(m)));
    await new Promise<void>((r) => this.sock.bind(0, "127.0.0.1", r));
  }

  /** Sends a Map-Register of `prefix` wanting a Map-Notify; whether one came within `ms`. */
  async register(port: number, prefix: string, key: string, ms = 1500): Promise<boolean> {
    const p = parsePrefix(prefix)!;
    const record: EidRecord = {
      ttl: 10,
      maskLen: p.len,
      action: ACTION.NO_ACTION,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [locatorRecord(ipAddress("192.0.2.77"), 1, 100, { local: true })],
    };
    const nonce = this.#nonce++;
    const bytes = emitSignedMapRegister({
      proxyReply: true,
      securityCapable: false,
      rtr: false,
      eidNotify: false,
      useTtlForTimeout: false,
      mergeRequest: false,
      mobileNode: false,
      wantMapNotify: true,
      nonce,
      keyId: 1,
      authData: new Uint8Array(0),
      records: [record],
      xtrIdPresent: true,
      xtrId: 0x77n,
      siteId: 1n,
    }, new HmacKey(1, key));
    return await this.#await(
      port,
      bytes,
      (m) => m.type === "map-notify" && m.msg.nonce === nonce,
      ms,
    );
  }

  /** Sends a Map-Request for `eid`; the RLOCs of the Map-Reply (undefined: none came). */
  async request(port: number, eid: string): Promise<string[] | undefined> {
    return (await this.reply(port, eid))?.rlocs;
  }

  /** Sends a Map-Request for `eid`; the first record of the Map-Reply (undefined: none came). */
  async reply(
    port: number,
    eid: string,
  ): Promise<{ rlocs: string[]; ttl: number; maskLen: number } | undefined> {
    const nonce = this.#nonce++;
    const bytes = emitMapRequest({
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
      records: [{ maskLen: 32, eid: ipAddress(eid) }],
    });
    let out: { rlocs: string[]; ttl: number; maskLen: number } | undefined;
    await this.#await(port, bytes, (m) => {
      if (m.type !== "map-reply" || m.msg.nonce !== nonce) return false;
      const r = m.msg.records[0];
      out = {
        rlocs: (r?.locators ?? []).map((l) => addressToString(l.address)),
        ttl: r?.ttl ?? -1,
        maskLen: r?.maskLen ?? -1,
      };
      return true;
    }, 1500);
    return out;
  }

  async #await(
    port: number,
    bytes: Uint8Array,
    match: (m: ReturnType<typeof parseControlMessage>) => boolean,
    ms: number,
  ): Promise<boolean> {
    this.got.length = 0;
    this.sock.send(bytes, port, "127.0.0.1");
    const end = Date.now() + ms;
    while (Date.now() < end) {
      for (const g of this.got) {
        try {
          if (match(parseControlMessage(g))) return true;
        } catch {
          // not ours
        }
      }
      await delay(10);
    }
    return false;
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}

Deno.test("a lisp-site added through the API takes registrations at once and survives kill -9", async () => {
  const dir = await Deno.makeTempDir({ prefix: "oor-site-edit-" });
  const controlPort = await freeUdpPort();
  const apiPort = freeTcpPort();
  const config = `${dir}/ms.toml`;
  await Deno.writeTextFile(
    config,
    [
      'control-address = "127.0.0.1"',
      `control-port = ${controlPort}`,
      "control-rate-limit = 0",
      "[api]",
      `listen = "127.0.0.1:${apiPort}"`,
      `token = "${TOKEN}"`,
      "[[lisp-site]]",
      'eid-prefix = "10.1.0.0/16"',
      "key-type = 1",
      'key = "config-key"',
      "",
    ].join("\n"),
  );
  const api = `http://127.0.0.1:${apiPort}/api/v1`;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const xtr = new Xtr();
  await xtr.open();
  const procs: MsProcess[] = [];
  try {
    const first = new MsProcess(config);
    procs.push(first);
    await first.started();
    assert.equal(
      await xtr.register(controlPort, "10.4.0.0/16", NEW_KEY, 700),
      false,
      "no site yet: no Map-Notify",
    );
    // Not an EID yet: the answering Workers say so, for the whole hole (15 minutes).
    const hole = await xtr.reply(controlPort, "10.4.200.1");
    assert.deepEqual(hole && [hole.ttl, hole.rlocs], [NOT_EID_TTL, []]);

    // A bad body: 400 naming the field, nothing changes.
    const bad = await fetch(`${api}/lisp-sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ "eid-prefix": "10.4.0.0/16", "key-type": 3, key: NEW_KEY }),
    });
    assert.equal(bad.status, 400);
    const badBody = await bad.json();
    assert.equal(badBody.field, "key-type");
    assert.match(badBody.error, /must be 1 \(HMAC-SHA-1\) or 2/);
    const before = await (await fetch(`${api}/lisp-sites`)).json();
    assert.deepEqual(before.entries.map((s: { "eid-prefix": string }) => s["eid-prefix"]), [
      "10.1.0.0/16",
    ]);

    const add = await fetch(`${api}/lisp-sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({
        "eid-prefix": "10.4.0.0/16",
        "key-type": 1,
        key: NEW_KEY,
        "accept-more-specifics": true,
      }),
    });
    assert.equal(add.status, 201, await add.clone().text());
    const added = (await add.json()).added;
    assert.equal(added["eid-prefix"], "10.4.0.0/16");
    assert.equal(added.key, undefined, "the key is not echoed");
    // The Workers know the site at once: an EID of it, not registered yet (1 minute).
    let site: Awaited<ReturnType<Xtr["reply"]>>;
    for (let i = 0; i < 8; i++) {
      site = await xtr.reply(controlPort, `10.4.${200 + i}.1`);
      assert.deepEqual(site && [site.ttl, site.rlocs], [NOT_REGISTERED_TTL, []], `request ${i}`);
    }
    assert.equal(await xtr.register(controlPort, "10.4.0.0/16", NEW_KEY), true, "at once");
    assert.equal(await xtr.register(controlPort, "10.4.0.0/16", "wrong key", 500), false);

    const stat = await fetch(`${api}/ms-static-registered-sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({
        "eid-prefix": "10.8.0.0/16",
        "rloc-address": [{ address: "192.0.2.88", priority: 1, weight: 100 }],
      }),
    });
    assert.equal(stat.status, 201, await stat.clone().text());
    await stat.body?.cancel();
    assert.deepEqual(await xtr.request(controlPort, "10.8.1.1"), ["192.0.2.88"]);

    // What GET gives can be posted back as is (with the key, which GET never shows).
    const listed = (await (await fetch(`${api}/lisp-sites`)).json()).entries;
    const mine = listed.find((s: { "eid-prefix": string }) => s["eid-prefix"] === "10.4.0.0/16");
    assert.equal(mine["live-registrations"].length, 1);
    const again = await fetch(`${api}/lisp-sites`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ ...mine, key: NEW_KEY }),
    });
    assert.equal(again.status, 201, await again.clone().text());
    await again.body?.cancel();

    await first.kill9();
    const second = new MsProcess(config);
    procs.push(second);
    await second.started();
    assert.match(second.log, /runtime-edits-applied state-file=\S+ms\.toml\.state\.json edits=2/);
    const after = await (await fetch(`${api}/lisp-sites`)).json();
    assert.deepEqual(
      after.entries.map((s: { "eid-prefix": string }) => s["eid-prefix"]),
      ["10.1.0.0/16", "10.4.0.0/16"],
    );
    assert.equal(await xtr.register(controlPort, "10.4.3.0/24", NEW_KEY), true, "after restart");
    assert.deepEqual(await xtr.request(controlPort, "10.8.1.1"), ["192.0.2.88"]);

    // Removed: no more registrations, and that too survives a restart.
    const del = await fetch(`${api}/lisp-sites?eid-prefix=10.4.0.0/16`, {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(del.status, 200);
    await del.body?.cancel();
    assert.equal(await xtr.register(controlPort, "10.4.0.0/16", NEW_KEY, 700), false);
    for (let i = 0; i < 8; i++) {
      const r = await xtr.reply(controlPort, `10.4.${200 + i}.1`);
      assert.deepEqual(r && [r.ttl, r.rlocs], [NOT_EID_TTL, []], `after removal, request ${i}`);
    }
    const gone = await fetch(`${api}/lisp-sites?eid-prefix=10.4.0.0/16`, {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    const stopped = await second.stop();
    assert.equal(stopped.code, 0, second.log);
    const third = new MsProcess(config);
    procs.push(third);
    await third.started();
    const last = await (await fetch(`${api}/lisp-sites`)).json();
    assert.deepEqual(last.entries.map((s: { "eid-prefix": string }) => s["eid-prefix"]), [
      "10.1.0.0/16",
    ]);
    assert.equal((await third.stop()).code, 0, third.log);
  } finally {
    for (const p of procs) {
      try {
        p.child.kill("SIGKILL");
      } catch {
        // gone
      }
      await p.child.status;
    }
    await xtr.close();
    await Deno.remove(dir, { recursive: true });
  }
});
