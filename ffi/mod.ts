/**
 * libc through `Deno.dlopen`: TUN devices, rtnetlink, batched UDP sockets
 * and poll, for the data plane and the roles. Not pure: needs
 * `--allow-ffi`, and most of it Linux and root (CAP_NET_ADMIN).
 *
 * @module
 */

export * from "./libc.ts";
export { type BatchOptions, PacketBatch } from "./batch.ts";
export { poll, PollSet, setNonblocking } from "./poll.ts";
export { type UdpOptions, UdpSocket } from "./udp.ts";
export { DEFAULT_TUN_MTU, Tun, type TunOptions } from "./tun.ts";
export * from "./netlink.ts";
