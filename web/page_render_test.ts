/**
 * The status page's sections as renderPage() writes them (web/_page.ts),
 * without a browser: registration state per map-server, remote RLOCs with
 * their probe RTT, map-cache origin, age and traffic, a map-server's
 * rejections, and the counters grouped by metric. page_test.ts loads the
 * same pages in Chromium.
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatBytes, formatCount, groupCounters, renderPage } from "./_page.ts";
import { tunnelRouterPage } from "../tests/page_model.ts";

/** The HTML of the table with `id`. */
function table(html: string, id: string): string {
  const t = new RegExp(`<table id="${id}">([\\s\\S]*?)</table>`).exec(html)?.[1];
  assert.ok(t !== undefined, `no table #${id}`);
  return t;
}

Deno.test("formatCount() groups thousands and formatBytes() picks a binary unit, exact bytes in a title", () => {
  assert.equal(formatCount(0), "0");
  assert.equal(formatCount(999), "999");
  assert.equal(formatCount(1234567), "1,234,567");
  assert.equal(formatBytes(512), '<span title="512 bytes">512 B</span>');
  assert.equal(formatBytes(1536), '<span title="1,536 bytes">1.5 KiB</span>');
  assert.equal(formatBytes(20 * 1024 * 1024), '<span title="20,971,520 bytes">20.0 MiB</span>');
});

Deno.test("groupCounters() groups series by metric name, labels as written, names sorted", () => {
  assert.deepEqual(
    groupCounters({
      'oor_b_total{reason="x"}': 1,
      "oor_a": 2,
      'oor_b_total{reason="y",via="data"}': 3,
    }),
    [
      { name: "oor_a", series: [{ labels: "", value: 2 }] },
      {
        name: "oor_b_total",
        series: [{ labels: 'reason="x"', value: 1 }, {
          labels: 'reason="y", via="data"',
          value: 3,
        }],
      },
    ],
  );
});

Deno.test("renderPage() shows each map-server's registration state as a word and its failures", () => {
  const t = table(renderPage(tunnelRouterPage()), "map-server-table");
  assert.match(t, /<th scope="col">State<\/th>/);
  assert.match(
    t,
    /<th scope="row">192\.0\.2\.10<\/th><td><span class="state up">registered<\/span><\/td>/,
  );
  assert.match(
    t,
    /<th scope="row">192\.0\.2\.11<\/th><td><span class="state down">failing<\/span><\/td><td>no<\/td><td class="num">7<\/td>/,
  );
  assert.match(t, /<span class="state pending">registering<\/span>/);
});

Deno.test("renderPage() lists the remote RLOCs probing watches with their RTT and last answer", () => {
  const html = renderPage(tunnelRouterPage());
  assert.match(html, /<a href="#remote-rlocs-h">Remote RLOCs<\/a>/);
  const t = table(html, "remote-rloc-table");
  assert.match(
    t,
    /<th scope="row">198\.51\.100\.1<\/th><td><span class="state up">up<\/span><\/td><td class="num">12\.5<\/td><td class="num">9<\/td><td class="num">9<\/td><td><time [^>]*>3 s ago<\/time><\/td>/,
  );
  assert.match(
    t,
    /<td class="num">none yet<\/td><td class="num">0<\/td><td class="num">6<\/td><td>never<\/td>/,
  );
});

Deno.test("renderPage() shows each map-cache entry's origin, age, packets and bytes", () => {
  const t = table(renderPage(tunnelRouterPage()), "map-cache-table");
  for (const h of ["Origin", "Age", "Packets", "Bytes"]) {
    assert.match(t, new RegExp(`<th scope="col"( class="num")?>${h}</th>`));
  }
  assert.match(
    t,
    /<td>map-reply<\/td><td>1 h 1 min<\/td><td class="num">1,234,567<\/td><td class="num"><span title="1,288,490,189 bytes">1\.2 GiB<\/span><\/td>/,
  );
  assert.match(t, /<td>config<\/td><td>2 d 0 h<\/td><td class="num">0<\/td>/);
});

Deno.test("renderPage() groups the counters by metric: one heading with type and help, a row per label set", () => {
  const t = table(renderPage(tunnelRouterPage()), "counter-table");
  assert.match(t, /<caption>Counters and gauges \(3 metrics, 4 series;/);
  const dropped =
    /<tbody class="family" data-metric="oor_dataplane_dropped_packets_total">([\s\S]*?)<\/tbody>/
      .exec(t)?.[1];
  assert.ok(dropped !== undefined);
  assert.match(
    dropped,
    /^\n<tr><th scope="rowgroup" rowspan="2"><code>oor_dataplane_dropped_packets_total<\/code><br><small><span class="type">counter<\/span> Packets dropped by the data plane, by reason/,
  );
  assert.match(dropped, /<td><code>reason=&quot;miss&quot;<\/code><\/td><td class="num">3<\/td>/);
  assert.match(
    dropped,
    /<tr><td><code>reason=&quot;too-big&quot;<\/code><\/td><td class="num">1<\/td><\/tr>/,
  );
  assert.match(
    t,
    /data-metric="oor_dataplane_encapsulated_packets_total">\n<tr>[^\n]*<td><\/td><td class="num">1,234,567<\/td>/,
  );
  assert.match(t, /rloc=&quot;198\.51\.100\.1&quot;<\/code><\/td><td class="num">0\.0125<\/td>/);
});

Deno.test("renderPage() lists a map-server's recent rejections, escaped, newest first", () => {
  const now = Date.UTC(2025, 5, 1, 12, 0, 0);
  const html = renderPage({
    ...tunnelRouterPage(now),
    role: "ms",
    status: { value: { details: {} } },
    mapCache: undefined,
    database: undefined,
    sites: {
      value: {
        sites: [],
        registrations: [],
        rejections: [
          {
            from: "192.0.2.7",
            reason: "auth",
            detail: "bad-hmac for site <10.1.0.0/16>",
            count: 12,
            firstAt: now - 600_000,
            lastAt: now - 4000,
          },
          {
            from: "2001:db8::9",
            reason: "no-site",
            detail: "10.8.0.0/24 is in no lisp-site",
            count: 1,
            firstAt: now - 700_000,
            lastAt: now - 700_000,
          },
        ],
      },
    },
  });
  assert.match(html, /<a href="#rejections-h">Rejections<\/a>/);
  const t = table(html, "rejection-table");
  assert.match(
    t,
    /<caption>Recent rejections, by source and reason, newest first \(2\)<\/caption>/,
  );
  assert.match(
    t,
    /<tr><th scope="row">192\.0\.2\.7<\/th><td>auth<\/td><td>bad-hmac for site &lt;10\.1\.0\.0\/16&gt;<\/td><td class="num">12<\/td><td><time [^>]*>10 min 0 s ago<\/time><\/td><td><time [^>]*>4 s ago<\/time><\/td><\/tr>\n<tr><th scope="row">2001:db8::9<\/th>/,
  );
});
