/**
 * Every metric the roles export, declared once: name, type, help text and
 * label names. Code counts through these entries
 * (`counters.inc(METRICS.trMapRepliesReceived, { result: "positive" })`),
 * so a label not declared is a type error, and the `/metrics` endpoint
 * takes HELP and TYPE from here.
 *
 * The data plane's counters are kept in the Worker by index, by key
 * ({@link DATAPLANE_COUNTERS}); {@link dataplaneSeries} says which series
 * of {@link DATAPLANE_METRICS} each key is exported as (the `dropped:<reason>`
 * keys are one family with a `reason` label).
 *
 * Names follow Prometheus' rules, which `promtool check metrics` checks
 * (tests/e2e/metrics_test.ts runs it on every role's `/metrics`): counters
 * end in `_total`, units are spelled out (`_seconds`, `_bytes`), no `:`,
 * and what varies (a reason, a type, a peer) is a label, not a name.
 *
 * @module
 */

/** One metric family. */
export interface Metric<L extends string = string> {
  /** Exported name (`oor_...`). */
  readonly name: string;
  /** Prometheus type. */
  readonly type: "counter" | "gauge";
  /** HELP text. */
  readonly help: string;
  /** Label names its series carry. */
  readonly labels: readonly L[];
}

function counter<L extends string = never>(
  name: string,
  help: string,
  labels: readonly L[] = [],
): Metric<L> {
  return { name, type: "counter", help, labels };
}

function gauge<L extends string = never>(
  name: string,
  help: string,
  labels: readonly L[] = [],
): Metric<L> {
  return { name, type: "gauge", help, labels };
}

/** The metrics of every role (the data plane's are {@link DATAPLANE_METRICS}). */
export const METRICS = {
  // The control plane every role shares (core/control.ts).
  controlMessagesIn: counter(
    "oor_control_messages_in_total",
    "Control messages received, by type (ecm-<type> for those inside an ECM); via=data for " +
      "those a tunnel router's data port handed up.",
    ["type", "via"],
  ),
  controlMessagesOut: counter(
    "oor_control_messages_out_total",
    "Control messages sent, by type.",
    ["type"],
  ),
  controlDropped: counter(
    "oor_control_dropped_total",
    "Control datagrams dropped, by reason.",
    ["reason"],
  ),
  controlRetransmits: counter(
    "oor_control_retransmits_total",
    "Control messages sent again after no answer.",
  ),
  controlSendErrors: counter(
    "oor_control_send_errors_total",
    "Control messages the socket refused to send, by reason.",
    ["reason"],
  ),
  controlTimeouts: counter("oor_control_timeouts_total", "Control requests that got no answer."),

  // Map-server (roles/ms.ts, roles/map_server/).
  msRegistrations: gauge(
    "oor_map_server_registrations",
    "Live registrations on the map-server, by source.",
    ["source"],
  ),
  msSites: gauge("oor_map_server_sites", "Configured lisp-sites."),
  msRegistersAccepted: counter(
    "oor_map_server_map_registers_accepted_total",
    "Map-Registers accepted (every record registered or withdrawn).",
  ),
  msRegisterRejected: counter(
    "oor_map_server_map_registers_rejected_total",
    "Map-Registers rejected, by reason (auth failures included).",
    ["reason"],
  ),
  msRegistrationsWithdrawn: counter(
    "oor_map_server_registrations_withdrawn_total",
    "Registrations withdrawn with TTL 0.",
  ),
  msRegistrationsExpired: counter(
    "oor_map_server_registrations_expired_total",
    "Registrations that expired without a refresh.",
  ),
  msMapNotifiesSent: counter(
    "oor_map_server_map_notifies_sent_total",
    "Map-Notifies sent to ETRs.",
  ),
  msMapNotifiesViaRtr: counter(
    "oor_map_server_map_notifies_via_rtr_total",
    "Map-Notifies sent to an RTR that relayed the registration.",
  ),
  msMapNotifyAcks: counter(
    "oor_map_server_map_notify_acks_total",
    "Map-Notify-Acks received, by result.",
    ["result"],
  ),
  msSubscriptions: gauge(
    "oor_map_server_subscriptions",
    "Subscriptions kept (RFC 9437): one per subscribed prefix and xTR-ID.",
  ),
  msSubscribeRequests: counter(
    "oor_map_server_subscribe_requests_total",
    "Map-Requests with the N bit, by result.",
    ["result"],
  ),
  msPublications: counter(
    "oor_map_server_publications_total",
    "Map-Notifies published to subscribers, by result.",
    ["result"],
  ),
  msMapRequestsAnswered: counter(
    "oor_map_server_map_requests_answered_total",
    "Map-Requests answered, by kind of answer.",
    ["kind"],
  ),
  msMapReferralsSent: counter(
    "oor_map_server_map_referrals_sent_total",
    "Map-Referrals sent to DDT map-resolvers, by action.",
    ["action"],
  ),
  msMapRequestsDropped: counter(
    "oor_map_server_map_requests_dropped_total",
    "Map-Requests dropped, by reason.",
    ["reason"],
  ),
  msInfoRequests: counter(
    "oor_map_server_info_requests_total",
    "Info-Requests received, by result.",
    ["result"],
  ),
  msServingWorkers: gauge(
    "oor_map_server_serving_workers",
    "Workers answering on the map-server's control port (0: the main thread alone).",
  ),
  msWorkerDatagrams: counter(
    "oor_map_server_worker_datagrams_total",
    "Datagrams an answering Worker received, by what became of them: answered there, " +
      "a verified Map-Register for the main thread, handed to the main thread, or dropped " +
      "(rate limit, or a main thread too far behind).",
    ["worker", "path"],
  ),

  // Map-resolver and DDT map-resolver (roles/mr.ts).
  mrReferralCacheEntries: gauge(
    "oor_mr_referral_cache_entries",
    "Entries in the map-resolver's referral cache.",
  ),
  mrPendingRequests: gauge("oor_mr_pending_requests", "Map-Requests being resolved."),
  mrRequests: counter(
    "oor_mr_requests_total",
    "Map-Requests received from ITRs, by mode.",
    ["mode"],
  ),
  mrResolutions: counter(
    "oor_mr_resolutions_total",
    "Resolutions finished, by result and reason.",
    ["result", "reason"],
  ),
  mrDropped: counter("oor_mr_dropped_total", "Map-Requests dropped, by reason.", ["reason"]),
  mrDdtRequestsSent: counter(
    "oor_mr_ddt_requests_sent_total",
    "DDT Map-Requests sent to DDT nodes and map-servers.",
  ),
  mrDuplicates: counter(
    "oor_mr_duplicates_total",
    "Map-Requests dropped as retransmissions of one being resolved.",
  ),
  mrExtraRecords: counter(
    "oor_mr_extra_records_total",
    "Map-Request records beyond the first, not resolved.",
  ),
  mrForwarded: counter(
    "oor_mr_forwarded_total",
    "ITRs' Map-Requests passed on to a map-server (a ddt-mr's: with the D bit, or after MS-ACK).",
  ),
  mrLoops: counter("oor_mr_loops_total", "Referral loops detected."),
  mrMapRepliesIgnored: counter(
    "oor_mr_map_replies_ignored_total",
    "Map-Replies to the map-resolver's own DDT Map-Requests (a DDT map-server forwarded or " +
      "proxy-replied to one), not used: the map-server gets the ITR's own request.",
  ),
  mrNegativeReplies: counter(
    "oor_mr_negative_replies_total",
    "Negative Map-Replies sent to ITRs, by reason.",
    ["reason"],
  ),
  mrReferralCacheHits: counter(
    "oor_mr_referral_cache_hits_total",
    "Resolutions started from the referral cache, by kind of entry.",
    ["kind"],
  ),
  mrReferralTimeouts: counter(
    "oor_mr_referral_timeouts_total",
    "DDT Map-Requests that got no Map-Referral.",
  ),
  mrReferrals: counter(
    "oor_mr_referrals_total",
    "Map-Referrals received, by action.",
    ["action"],
  ),
  mrPeersAsked: counter(
    "oor_mr_map_server_peers_asked_total",
    "Map-servers asked because another one's MS-NOT-REGISTERED listed them as its peers.",
  ),
  mrRootRestarts: counter(
    "oor_mr_root_restarts_total",
    "Resolutions started again from the DDT roots after a stale cached referral.",
  ),

  // DDT node (roles/ddt.ts).
  ddtRequests: counter(
    "oor_ddt_requests_total",
    "Map-Requests received by the DDT node, by kind.",
    ["kind"],
  ),
  ddtReferrals: counter(
    "oor_ddt_referrals_total",
    "Map-Referrals sent by the DDT node, by action.",
    ["action"],
  ),
  ddtDropped: counter(
    "oor_ddt_dropped_total",
    "Map-Requests dropped by the DDT node, by reason.",
    ["reason"],
  ),

  // Tunnel routers (roles/tunnel_router/).
  trMapRegistersSent: counter(
    "oor_tr_map_registers_sent_total",
    "Map-Registers sent, registrations and withdrawals.",
    ["kind"],
  ),
  trMapNotifies: counter(
    "oor_tr_map_notifies_total",
    "Map-Notifies received, by result.",
    ["result"],
  ),
  trPublications: counter(
    "oor_tr_publications_total",
    "Publications (RFC 9437 Map-Notifies of subscribed mappings) received, by result.",
    ["result"],
  ),
  trRegistered: gauge(
    "oor_tr_registered",
    "Mapping and map-server pairs whose last Map-Register was acknowledged.",
  ),
  trMapServerState: gauge(
    "oor_tr_map_server_registration_state",
    "Registration state with each map-server: 1 for the state it is in, 0 for the others " +
      "(registered: every mapping acknowledged; registering: not yet, within the first " +
      "retries; failing: a Map-Register unanswered by a valid Map-Notify for ten retry periods).",
    ["map_server", "state"],
  ),
  trMapRegisterFailures: counter(
    "oor_tr_map_register_failures_total",
    "Map-Registers to a map-server that got no valid Map-Notify, by reason (no-map-notify: " +
      "none before the next one went; auth: one failed authentication).",
    ["map_server", "reason"],
  ),
  trMapRequestsSent: counter(
    "oor_tr_map_requests_sent_total",
    "Map-Requests sent to map-resolvers, by reason.",
    ["reason"],
  ),
  trMapRequestTimeouts: counter(
    "oor_tr_map_request_timeouts_total",
    "Resolutions that got no Map-Reply.",
  ),
  trMapReplies: counter(
    "oor_tr_map_replies_total",
    "Map-Reply records received, by result.",
    ["result"],
  ),
  trMapCacheEntries: gauge("oor_tr_map_cache_entries", "Map-cache entries, by kind.", ["kind"]),
  trMapCacheExpired: counter("oor_tr_map_cache_expired_total", "Map-cache entries expired."),
  trMisses: counter(
    "oor_tr_misses_total",
    "Data-plane misses, by whether a Map-Request went.",
    ["result"],
  ),
  trMapRequestsReceived: counter(
    "oor_tr_map_requests_received_total",
    "Map-Requests received by the ETR, by kind.",
    ["kind"],
  ),
  trMapRepliesSent: counter(
    "oor_tr_map_replies_sent_total",
    "Map-Replies sent by the ETR, by kind.",
    ["kind"],
  ),
  trMapRequestsDropped: counter(
    "oor_tr_map_requests_dropped_total",
    "Map-Requests the ETR did not answer, by reason.",
    ["reason"],
  ),
  trProbesSent: counter("oor_tr_probes_sent_total", "RLOC-probes sent, retransmissions included."),
  trProbesAnswered: counter("oor_tr_probes_answered_total", "RLOC-probes answered."),
  trProbeTimeouts: counter("oor_tr_probe_timeouts_total", "RLOC-probes that got no answer."),
  trProbeRtt: gauge(
    "oor_tr_rloc_probe_rtt_seconds",
    "Round-trip time of the last answered RLOC-probe, per remote RLOC probed.",
    ["rloc"],
  ),
  trLocatorsDown: gauge("oor_tr_locators_down", "Remote RLOCs probing marks down."),
  trLocatorChanges: counter(
    "oor_tr_locator_changes_total",
    "Remote RLOCs marked up or down by probing.",
    ["state"],
  ),
  trSmrsSent: counter("oor_tr_smrs_sent_total", "SMRs sent."),
  trSmrsReceived: counter(
    "oor_tr_smrs_received_total",
    "SMRs received, by result.",
    ["result"],
  ),
  trRlocChanges: counter(
    "oor_tr_rloc_changes_total",
    "Changes of the local locators after interface events.",
  ),
  trDataPortControl: counter(
    "oor_tr_data_port_control_total",
    "Control messages handed up from the data port, by type.",
    ["type"],
  ),
  trInfoRequestsSent: counter("oor_tr_info_requests_sent_total", "Info-Requests sent."),
  trInfoRequestTimeouts: counter(
    "oor_tr_info_request_timeouts_total",
    "Info-Requests that got no Info-Reply.",
  ),
  trInfoReplies: counter(
    "oor_tr_info_replies_total",
    "Info-Replies received, by result.",
    ["result"],
  ),
  trNatChanges: counter(
    "oor_tr_nat_changes_total",
    "Changes of the NAT seen through Info-Replies.",
  ),
  trRtrRelays: counter(
    "oor_tr_rtr_relays_total",
    "RTR: registrations relayed and their Map-Notifies, by result.",
    ["result"],
  ),
} as const;

/** The process families the metrics endpoint adds itself. */
export const PROCESS_METRICS = {
  buildInfo: gauge("oor_build_info", "Always 1; the labels say which role and version run.", [
    "role",
    "version",
  ]),
  startTime: gauge(
    "oor_process_start_time_seconds",
    "Start time of the role since the Unix epoch, seconds.",
  ),
  uptime: gauge("oor_process_uptime_seconds", "Seconds since the role started."),
  residentMemory: gauge("oor_process_resident_memory_bytes", "Resident memory size, bytes."),
} as const;

/** What the data plane exports (its counters are kept by key: {@link DATAPLANE_COUNTERS}). */
export const DATAPLANE_METRICS = {
  encapsulatedPackets: counter(
    "oor_dataplane_encapsulated_packets_total",
    "Packets encapsulated toward a remote RLOC (ITR, RTR).",
  ),
  encapsulatedBytes: counter(
    "oor_dataplane_encapsulated_bytes_total",
    "Bytes of the packets encapsulated: the inner packets, without the outer headers.",
  ),
  decapsulatedPackets: counter(
    "oor_dataplane_decapsulated_packets_total",
    "Packets decapsulated (ETR, RTR), before the check of their destination.",
  ),
  decapsulatedBytes: counter(
    "oor_dataplane_decapsulated_bytes_total",
    "Bytes of the packets decapsulated: the inner packets, without the outer headers.",
  ),
  tunReadPackets: counter(
    "oor_dataplane_tun_read_packets_total",
    "Packets read from the TUN devices.",
  ),
  tunReadBytes: counter("oor_dataplane_tun_read_bytes_total", "Bytes read from the TUN devices."),
  tunWrittenPackets: counter(
    "oor_dataplane_tun_written_packets_total",
    "Packets written to the TUN devices.",
  ),
  udpReceivedDatagrams: counter(
    "oor_dataplane_udp_received_datagrams_total",
    "Datagrams received on the data sockets.",
  ),
  udpReceivedBytes: counter(
    "oor_dataplane_udp_received_bytes_total",
    "UDP payload bytes received on the data sockets.",
  ),
  udpSentDatagrams: counter(
    "oor_dataplane_udp_sent_datagrams_total",
    "Datagrams sent from the data sockets.",
  ),
  udpSentBytes: counter(
    "oor_dataplane_udp_sent_bytes_total",
    "UDP payload bytes sent from the data sockets (LISP or VXLAN-GPE header and inner packet).",
  ),
  udpSendErrors: counter(
    "oor_dataplane_udp_send_errors_total",
    "Datagrams the data sockets refused to send.",
  ),
  tunWriteErrors: counter(
    "oor_dataplane_tun_write_errors_total",
    "Packets the TUN devices refused.",
  ),
  readErrors: counter(
    "oor_dataplane_read_errors_total",
    "Failed reads of the TUN devices or data sockets.",
  ),
  batches: counter("oor_dataplane_batches_total", "Batches of packets handled."),
  missesPosted: counter(
    "oor_dataplane_misses_posted_total",
    "Map-cache misses reported to the control plane (at most one per destination per second).",
  ),
  peersPosted: counter(
    "oor_dataplane_peers_posted_total",
    "Remote RLOCs reported to the control plane.",
  ),
  controlPunted: counter(
    "oor_dataplane_control_punted_total",
    "Control messages on the data port handed to the control plane.",
  ),
  controlErrors: counter(
    "oor_dataplane_control_errors_total",
    "Control-plane updates the data plane could not apply.",
  ),
  internalErrors: counter(
    "oor_dataplane_internal_errors_total",
    "Batches lost to an internal error.",
  ),
  icmpTooBig: counter(
    "oor_dataplane_icmp_too_big_sent_total",
    "ICMP fragmentation-needed / packet-too-big errors written back to the TUN for packets too " +
      "big for the path (RFC 9300 §7.1).",
  ),
  tooBigFragmented: counter(
    "oor_dataplane_too_big_fragmented_total",
    "IPv4 packets without DF too big for the path: encapsulated anyway, the kernel fragments " +
      "the outer packet and the ETR reassembles it.",
  ),
  droppedPackets: counter(
    "oor_dataplane_dropped_packets_total",
    "Packets dropped by the data plane, by reason (not-local-source, not-local-destination, " +
      "miss, no-petr, drop, no-locator, elp-strict, no-socket, loop, bad-header, bad-inner, " +
      "truncated, too-big, send-buffer, bad-offload; README.md says what each means).",
    ["reason"],
  ),
  workerPackets: counter(
    "oor_dataplane_worker_packets_total",
    "Packets read from its TUN queues and datagrams received, by data-plane Worker (with more " +
      "than one: [data-plane] workers); one flow is counted by one Worker.",
    ["worker"],
  ),
  mapCacheEntries: gauge(
    "oor_dataplane_map_cache_entries",
    "Entries in the data plane's copy of the map-cache (proxy-ETRs not counted).",
  ),
} as const;

/**
 * The data plane's counters, in the Worker's index order: key and what it
 * counts. `dropped:<reason>` are drops. {@link dataplaneSeries} names the
 * series each is exported as.
 */
export const DATAPLANE_COUNTERS = [
  ["encapsulated", "Packets encapsulated."],
  ["decapsulated", "Packets decapsulated."],
  ["tun-read", "Packets read from the TUN devices."],
  ["tun-written", "Packets written to the TUN devices."],
  ["udp-received", "Datagrams received on the data sockets."],
  ["sent", "Datagrams sent from the data sockets."],
  ["send-errors", "Datagrams the data sockets refused to send."],
  ["tun-write-errors", "Packets the TUN devices refused."],
  ["read-errors", "Failed reads of the TUN devices or data sockets."],
  ["batches", "Batches of packets handled."],
  ["misses-posted", "Misses reported to the control plane."],
  ["peers-posted", "Remote RLOCs reported to the control plane."],
  ["control-punted", "Control messages on the data port handed to the control plane."],
  ["control-errors", "Control-plane updates the data plane could not apply."],
  ["internal-errors", "Batches lost to an internal error."],
  [
    "icmp-too-big",
    "ICMP fragmentation-needed / packet-too-big errors written back to the TUN for packets too " +
    "big for the path (RFC 9300 §7.1).",
  ],
  [
    "too-big-fragmented",
    "IPv4 packets without DF too big for the path: encapsulated anyway, the kernel fragments the " +
    "outer packet and the ETR reassembles it.",
  ],
  ["encapsulated-bytes", "Bytes of the inner packets encapsulated."],
  ["decapsulated-bytes", "Bytes of the inner packets decapsulated."],
  ["tun-read-bytes", "Bytes read from the TUN devices."],
  ["udp-received-bytes", "UDP payload bytes received on the data sockets."],
  ["sent-bytes", "UDP payload bytes sent from the data sockets."],
  ["map-cache-entries", "Entries in the data plane's map-cache (a gauge, set when reported)."],
  ["dropped:not-local-source", "Dropped: the source is not a local EID."],
  ["dropped:not-local-destination", "Dropped: decapsulated for a destination not a local EID."],
  ["dropped:miss", "Dropped: no map-cache entry (a Map-Request is sent)."],
  ["dropped:no-petr", "Dropped: natively forward, but no proxy-ETR."],
  ["dropped:drop", "Dropped: a negative entry says drop."],
  ["dropped:no-locator", "Dropped: no usable locator."],
  [
    "dropped:elp-strict",
    "Dropped: no usable locator, and a strict hop (S bit) of an explicit locator path cannot be " +
    "reached (unresolved, no route, or probed down), so the packet is not sent past it.",
  ],
  ["dropped:no-socket", "Dropped: no data socket of the locator's family."],
  ["dropped:loop", "Dropped: an RTR would send a packet back where it came from."],
  ["dropped:bad-header", "Dropped: a bad LISP or VXLAN-GPE header."],
  ["dropped:bad-inner", "Dropped: not an IPv4 or IPv6 packet inside."],
  ["dropped:truncated", "Dropped: a datagram longer than the buffers."],
  [
    "dropped:too-big",
    "Dropped: too big for the path (with DF, or IPv6; answered with ICMP within its rate limit) " +
    "or for the buffers.",
  ],
  ["dropped:send-buffer", "Dropped: the socket's send buffer stayed full."],
  [
    "dropped:bad-offload",
    "Dropped: a packet from an offloading TUN that could not be cut into segments or have its " +
    "checksum finished.",
  ],
  ["tun-read-gso", "GSO super-packets read from the TUN devices (each is also one tun-read)."],
  ["tun-gso-segments", "Segments the GSO super-packets read from the TUN devices were cut into."],
  ["tun-written-gso", "TUN writes carrying several packets merged into one (GSO)."],
  [
    "tun-merged",
    "Packets written to the TUN devices inside a merged write (tun-written counts them).",
  ],
  ["udp-gso-sends", "UDP GSO sends: several datagrams to one RLOC in one send."],
  ["udp-gso-fallbacks", "UDP GSO sends the kernel refused, sent again one datagram each."],
  ["udp-gro-datagrams", "Datagrams received coalesced by UDP GRO (udp-received counts them)."],
  [
    "merge-bad-checksums",
    "Packets not merged into a TUN write because a checksum was wrong (written alone, for the " +
    "kernel to drop).",
  ],
] as const;

/** A data-plane counter key. */
export type DataplaneCounter = typeof DATAPLANE_COUNTERS[number][0];

/** The data-plane keys exported under a name of their own (the drops are one family). */
const DATAPLANE_EXPORTS: Readonly<Record<string, Metric>> = {
  "encapsulated": DATAPLANE_METRICS.encapsulatedPackets,
  "encapsulated-bytes": DATAPLANE_METRICS.encapsulatedBytes,
  "decapsulated": DATAPLANE_METRICS.decapsulatedPackets,
  "decapsulated-bytes": DATAPLANE_METRICS.decapsulatedBytes,
  "tun-read": DATAPLANE_METRICS.tunReadPackets,
  "tun-read-bytes": DATAPLANE_METRICS.tunReadBytes,
  "tun-written": DATAPLANE_METRICS.tunWrittenPackets,
  "udp-received": DATAPLANE_METRICS.udpReceivedDatagrams,
  "udp-received-bytes": DATAPLANE_METRICS.udpReceivedBytes,
  "sent": DATAPLANE_METRICS.udpSentDatagrams,
  "sent-bytes": DATAPLANE_METRICS.udpSentBytes,
  "send-errors": DATAPLANE_METRICS.udpSendErrors,
  "tun-write-errors": DATAPLANE_METRICS.tunWriteErrors,
  "read-errors": DATAPLANE_METRICS.readErrors,
  "batches": DATAPLANE_METRICS.batches,
  "misses-posted": DATAPLANE_METRICS.missesPosted,
  "peers-posted": DATAPLANE_METRICS.peersPosted,
  "control-punted": DATAPLANE_METRICS.controlPunted,
  "control-errors": DATAPLANE_METRICS.controlErrors,
  "internal-errors": DATAPLANE_METRICS.internalErrors,
  "icmp-too-big": DATAPLANE_METRICS.icmpTooBig,
  "too-big-fragmented": DATAPLANE_METRICS.tooBigFragmented,
  "map-cache-entries": DATAPLANE_METRICS.mapCacheEntries,
};

const EXTRA_DATAPLANE = new Map<string, Metric>();

/**
 * The series a data-plane counter key is exported as: `dropped:<reason>`
 * → `oor_dataplane_dropped_packets_total{reason="<reason>"}`,
 * `worker-packets:<i>` (roles/tunnel_router/datapath.ts, with several
 * Workers) → `oor_dataplane_worker_packets_total{worker="<i>"}`; the keys of
 * {@link DATAPLANE_METRICS} → their metric; any other key (one added to
 * the table without an export of its own) → the counter
 * `oor_dataplane_<key with _ for ->_total`, with the table's help text.
 */
export function dataplaneSeries(
  key: string,
): { readonly metric: Metric; readonly labels?: Readonly<Record<string, string>> } {
  if (key.startsWith("dropped:")) {
    return { metric: DATAPLANE_METRICS.droppedPackets, labels: { reason: key.slice(8) } };
  }
  if (key.startsWith("worker-packets:")) {
    return { metric: DATAPLANE_METRICS.workerPackets, labels: { worker: key.slice(15) } };
  }
  const known = DATAPLANE_EXPORTS[key];
  if (known !== undefined) return { metric: known };
  let m = EXTRA_DATAPLANE.get(key);
  if (m === undefined) {
    const help = DATAPLANE_COUNTERS.find(([k]) => k === key)?.[1] ??
      `Data-plane counter ${key}.`;
    m = counter(`oor_dataplane_${key.replace(/[^a-zA-Z0-9_]/g, "_")}_total`, help);
    EXTRA_DATAPLANE.set(key, m);
  }
  return { metric: m };
}

const BY_NAME: ReadonlyMap<string, Metric> = new Map(
  [
    ...Object.values(METRICS),
    ...Object.values(PROCESS_METRICS),
    ...Object.values(DATAPLANE_METRICS),
    ...DATAPLANE_COUNTERS.map(([k]) => dataplaneSeries(k).metric),
  ].map((m) => [m.name, m]),
);

/** The declared metric of an exported name, if any. */
export function metricByName(name: string): Metric | undefined {
  const m = BY_NAME.get(name);
  if (m !== undefined) return m;
  for (const x of EXTRA_DATAPLANE.values()) if (x.name === name) return x;
  return undefined;
}
