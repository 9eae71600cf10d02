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
import { startMsWithApi } from "../tests/web_fixtures.ts";
import { testNeeding } from "../tests/prereq.ts";

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
      const counters = new Map(rows(dom, "counter-table").map((r) => [r[0], r[1]]));
      assert.equal(counters.get("oor_map_server_map_registers_accepted_total"), "2");

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
