/**
 * No lookups at start: a lab's processes (every role, `oor lig`, the
 * helpers) send no DNS query from its namespaces. Deno checks for a newer
 * version of itself at start unless `DENO_NO_UPDATE_CHECK=1`, and that
 * check resolves a name; scripts/lab/topology.ts sets the variable for
 * every process it starts.
 *
 * Every namespace counts the UDP and TCP datagrams to port 53 it sends
 * (an nftables output chain, in place before any process starts); after
 * the lab has started, registered, resolved and carried traffic, every
 * count is 0. A datagram to port 53 sent on purpose at the end shows the
 * counting works.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, sleep } from "../../scripts/lab/topology.ts";
import { lig, PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { bothWays, e2e, PYTHON, registered, withTopology } from "./_lab.ts";
import { commandsMissing } from "../prereq.ts";

const TABLE = "oor_lab_dns";

const RULES = [
  `table inet ${TABLE} {`,
  "  chain out {",
  "    type filter hook output priority 0; policy accept;",
  "    udp dport 53 counter",
  "    tcp dport 53 counter",
  "  }",
  "}",
  "",
].join("\n");

/** The packets `node` sent to port 53 so far. */
async function dnsSent(lab: Lab, node: string): Promise<number> {
  const out = JSON.parse(await lab.execOk(node, ["nft", "-j", "list", "table", "inet", TABLE])) as {
    nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[];
  };
  let n = 0;
  for (const item of out.nftables) {
    for (const e of item.rule?.expr ?? []) n += e.counter?.packets ?? 0;
  }
  return n;
}

/** The topology with the counting table put in every namespace before anything starts. */
function counting(t: Topology): Topology {
  return {
    ...t,
    setup: [
      ...(t.setup ?? []),
      ...t.nodes.map((n) => ({
        node: n.name,
        file: `dns-${n.name}.nft`,
        text: RULES,
        command: ["nft", "-f"],
      })),
    ],
  };
}

e2e(
  "e2e: a lab starts, registers, resolves and carries traffic without one DNS query",
  async () => {
    await withTopology("basic", "e2e-no-dns", {}, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      const answer = await lig(lab, "xtr1", PLAN.hostB4, PLAN.mr4);
      assert.equal(answer.code, 0, `oor lig answered: ${answer.stderr}`);
      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      // Deno's update check runs in the background a moment after start.
      await sleep(2000);
      const sent: Record<string, number> = {};
      for (const n of ctx.topo.nodes) sent[n.name] = await dnsSent(lab, n.name);
      assert.deepEqual(
        Object.entries(sent).filter(([, v]) => v > 0),
        [],
        `DNS queries sent, by namespace: ${JSON.stringify(sent)}`,
      );
      // The counting works: one datagram to port 53, on purpose, inside the lab.
      await lab.execOk("hosta", [
        PYTHON,
        "-c",
        "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('10.1.0.1', 53))",
      ]);
      assert.equal(await dnsSent(lab, "hosta"), 1, "the datagram sent on purpose is counted");
    }, counting);
  },
  commandsMissing(["nft"], "apt-get install nftables"),
);
