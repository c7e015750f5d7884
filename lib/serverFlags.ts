// The V8 flags a long-lived CMDOP server process is started with: the
// control plane under `cmdop server` / `cmdop up` (cli/relaunch.ts runs it in
// a child node that has them), and the desktop app's control-plane and agent
// processes (app/main/hosts.ts passes them as the child's execArgv).
//
// Why that flag: V8 counts the ArrayBuffer memory of objects promoted to the
// old generation against that generation's allocation limit. File chunks (up
// to 2 MiB each, outside the JS heap) that the control plane holds across two
// young collections, waiting on a slower reader, get promoted, and with V8's
// small starting limit that set off a full mark-compact every ~8 MiB moved:
// 55-76 per 512 MiB, and 4.4-6.5 CPU-s for what takes 2.6-3.8 without them.
// With a 128 MiB first old generation: none in any run measured.
// Cost: up to ~128 MiB of old generation may be garbage before the first
// full collection.

export const SERVER_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=128'];
