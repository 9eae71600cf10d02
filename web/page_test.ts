/**
 * The status page of a running map-server, loaded in headless Chromium
 * (Debian `chromium`; .ci/run installs it). Skipped, saying so, when
 * chromium is not installed.
 *
 * `OOR_UPDATE_SCREENSHOT=1` also rewrites docs/status-page.png.
 *
 * @module
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { ipAddress } from "../wire/address.ts";
import { HmacKey } from "../wire/auth.ts";
import { ACTION } from "../wire/eid_record.ts";
import { locatorRecord } from "../wire/locator.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { SITE_KEY, startMsWithApi } from "../tests/web_fixtures.ts";
import { testNeeding } from "../tests/prereq.ts";
import { renderPage } from "./_page.ts";
import { tunnelRouterPage } from "../tests/page_model.ts";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "chromium";

async function chromiumVersion(): Promise<string | undefined> {
  try {
    const out = await new Deno.Command(CHROMIUM, {
      args: ["--version"],
      stdout: "piped",
      stderr: "null",
    }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
  } catch {
    return undefined;
  }
}

const version = await chromiumVersion();

/** Runs headless chromium on `url` with `extra` flags; its standard output. */
async function chromium(url: string, extra: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "oor-chromium-" });
  try {
    const out = await new Deno.Command(CHROMIUM, {
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        // Nothing but loopback: names other than 127.0.0.1 do not resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        `--user-data-dir=${profile}`,
        ...extra,
        url,
      ],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `chromium failed:\n${new TextDecoder().decode(out.stderr)}`);
    return stdout;
  } finally {
    await Deno.remove(profile, { recursive: true });
  }
}

/** The text of the cells of each row of the table with `id` in `dom`. */
function rows(dom: string, id: string): string[][] {
  const table = new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`).exec(dom)?.[1];
  assert.ok(table !== undefined, `no table #${id} in the DOM`);
  const body = /<tbody>([\s\S]*?)<\/tbody>/.exec(table)?.[1] ?? "";
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((r) =>
    [...r[1]!.matchAll(/<t[hd][^>]*>([\s\S]*?)<\/t[hd]>/g)].map((c) =>
      c[1]!.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim()
    )
  );
}

/**
 * The metric groups of the counter table in `dom`: name -> the text of its
 * heading cell and its rows as [labels, value].
 */
function families(dom: string): Map<string, { about: string; rows: [string, string][] }> {
  const table = /<table id="counter-table">([\s\S]*?)<\/table>/.exec(dom)?.[1];
  assert.ok(table !== undefined, "no table #counter-table in the DOM");
  const text = (h: string) => h.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();
  const out = new Map<string, { about: string; rows: [string, string][] }>();
  const groups = /<tbody class="family" data-metric="([^"]+)">([\s\S]*?)<\/tbody>/g;
  for (const [, name, body] of table.matchAll(groups)) {
    const about = text(/<th scope="rowgroup"[^>]*>([\s\S]*?)<\/th>/.exec(body!)?.[1] ?? "");
    const rows = [...body!.matchAll(/<td>([\s\S]*?)<\/td><td class="num">([\s\S]*?)<\/td>/g)]
      .map((m): [string, string] => [text(m[1]!), text(m[2]!)]);
    out.set(name!, { about, rows });
  }
  return out;
}

/** Sends the ms a Map-Register for `prefix`, in no site, and waits until it is rejected. */
async function registerOutsideSites(
  h: Awaited<ReturnType<typeof startMsWithApi>>,
  prefix: string,
): Promise<void> {
  const p = parsePrefix(prefix)!;
  const bytes = emitSignedMapRegister({
    proxyReply: false,
    securityCapable: false,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: false,
    nonce: 99n,
    keyId: 1,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: ACTION.NO_ACTION,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [locatorRecord(ipAddress("127.0.0.9"))],
    }],
    xtrIdPresent: false,
  }, new HmacKey(1, SITE_KEY));
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", r));
  try {
    sock.send(bytes, h.ms.port, "127.0.0.1");
    const end = Date.now() + 3000;
    const rejected = () =>
      h.deps.counters.get("oor_map_server_map_registers_rejected_total", { reason: "no-site" });
    while (rejected() < 1) {
      if (Date.now() > end) throw new Error("the Map-Register was not rejected");
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    await new Promise<void>((r) => sock.close(() => r()));
  }
}

testNeeding(version === undefined ? "needs chromium (apt-get install chromium)" : undefined, {
  name: "the status page of a running ms shows its registrations in headless Chromium",
  sanitizeResources: false,
  fn: async () => {
    const h = await startMsWithApi();
    try {
      await h.register("10.1.5.0/24", ["127.0.0.2", "127.0.0.3"], 0xabcdefn);
      await h.register("10.1.7.0/24", ["127.0.0.4"], 0x1234n);
      const dom = await chromium(h.api.url, ["--dump-dom"]);
      assert.match(dom, /<title>oor ms status<\/title>/);
      assert.match(dom, /<h1>oor ms<\/h1>/);
      const regs = rows(dom, "registration-table");
      const byPrefix = new Map(regs.map((r) => [r[0], r]));
      const a = byPrefix.get("10.1.5.0/24");
      assert.ok(a, `no row for 10.1.5.0/24 in ${JSON.stringify(regs)}`);
      assert.equal(a[1], "10.1.0.0/16", "site");
      assert.equal(a[2], "00000000000000000000000000abcdef", "xTR-ID");
      assert.match(a[4]!, /^127\.0\.0\.2 up p1\/w100 127\.0\.0\.3 up p1\/w100$/);
      assert.match(a[5]!, /^\d+ s ago$/, "last seen");
      assert.match(a[6]!, /^in [23] min \d+ s$/, "expires");
      assert.equal(byPrefix.get("10.1.7.0/24")?.[2], "00000000000000000000000000001234");
      assert.equal(byPrefix.get("10.9.0.0/16")?.[6], "never (static)");
      assert.equal(regs.length, 3);
      const sites = rows(dom, "site-table");
      assert.deepEqual(sites.map((r) => r[0]), ["10.1.0.0/16", "[7]fd00:1::/48"]);
      const groups = families(dom);
      const accepted = groups.get("oor_map_server_map_registers_accepted_total");
      assert.ok(accepted, `no accepted counter in ${[...groups.keys()]}`);
      assert.deepEqual(accepted.rows, [["", "2"]]);
      assert.match(accepted.about, /^oor_map_server_map_registers_accepted_total counter Map-/);
      assert.deepEqual(groups.get("oor_map_server_registrations")?.rows, [
        ['source="map-register"', "2"],
        ['source="static"', "1"],
      ], "one group, a row per label set");
      assert.match(groups.get("oor_map_server_registrations")!.about, / gauge Live registrations/);

      // A rejected Map-Register shows in the rejections table.
      await registerOutsideSites(h, "10.77.0.0/24");
      const dom2 = await chromium(`${h.api.url}?refresh=0`, ["--dump-dom"]);
      const rejections = rows(dom2, "rejection-table");
      assert.equal(rejections.length, 1);
      assert.equal(rejections[0]![0], "127.0.0.1");
      assert.equal(rejections[0]![1], "no-site");
      assert.equal(rejections[0]![2], "10.77.0.0/24 is in no lisp-site");
      assert.equal(rejections[0]![3], "1");
      assert.match(rejections[0]![5]!, /^\d+ s ago$/);
      assert.deepEqual(
        families(dom2).get("oor_map_server_map_registers_rejected_total")?.rows,
        [['reason="no-site"', "1"]],
      );

      const dir = await Deno.makeTempDir();
      try {
        const png = `${dir}/status-page.png`;
        await chromium(h.api.url, [`--screenshot=${png}`, "--window-size=1200,800"]);
        const bytes = await Deno.readFile(png);
        assert.deepEqual([...bytes.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "a PNG");
        if (Deno.env.get("OOR_UPDATE_SCREENSHOT") === "1") {
          const docs = new URL("../docs/status-page.png", import.meta.url).pathname;
          await Deno.copyFile(png, docs);
        }
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    } finally {
      await h.close();
    }
  },
});

testNeeding(version === undefined ? "needs chromium (apt-get install chromium)" : undefined, {
  name:
    "a tunnel router's status page shows map-server states, probe RTTs and map-cache traffic in headless Chromium",
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "oor-page-" });
    try {
      const m = tunnelRouterPage();
      const file = `${dir}/xtr.html`;
      await Deno.writeTextFile(file, renderPage(m));
      const dom = await chromium(`file://${file}`, ["--dump-dom"]);
      assert.deepEqual(rows(dom, "map-server-table").map((r) => [r[0], r[1], r[3]]), [
        ["192.0.2.10", "registered", "0"],
        ["192.0.2.11", "failing", "7"],
        ["192.0.2.12", "registering", "0"],
      ]);
      assert.deepEqual(rows(dom, "remote-rloc-table").map((r) => r.slice(0, 5)), [
        ["198.51.100.1", "up", "12.5", "9", "9"],
        ["198.51.100.2", "down", "none yet", "0", "6"],
      ]);
      const cache = rows(dom, "map-cache-table");
      assert.deepEqual(cache.map((r) => [r[0], r[4], r[5], r[6], r[7]]), [
        ["10.2.0.0/24", "map-reply", "1 h 1 min", "1,234,567", "1.2 GiB"],
        ["10.9.0.0/16", "config", "2 d 0 h", "0", "0 B"],
      ]);
      assert.match(dom, /<span title="1,288,490,189 bytes">1\.2 GiB<\/span>/);
      const groups = families(dom);
      assert.deepEqual(groups.get("oor_dataplane_dropped_packets_total")?.rows, [
        ['reason="miss"', "3"],
        ['reason="too-big"', "1"],
      ]);
      assert.deepEqual(groups.get("oor_tr_rloc_probe_rtt_seconds")?.rows, [
        ['rloc="198.51.100.1"', "0.0125"],
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
