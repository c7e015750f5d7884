// Keeps freed memory for reuse instead of handing it back to the kernel, in
// the CMDOP processes that move file bytes and are not servers: `cmdop cp`
// and the agent (never in a process that merely imports the SDK: a library
// must not change its host's allocator).
//
// Why: a file transfer allocates a fresh 0.1-2 MiB Buffer several times per
// chunk in every process on its path (grpc-js frames each message into a new
// buffer, and joins the HTTP/2 DATA frames of a received one into another).
// glibc serves such sizes with mmap() and returns them with munmap(), or trims
// the heap's top back to the kernel once 128 KiB of it is free, so every
// chunk's buffers are new pages: a page fault and a zeroed page each 4 KiB.
// On these VMs a fault costs ~15-20 us, and copying 2 GiB through fresh
// 2 MiB buffers took 8-15 s of CPU against 0.5-0.8 s with the pages reused
// (bench/files.ts prints the transfer figures; test/sendPath.test.ts
// checks the fault counts).
//
// How: glibc raises its mmap threshold to the size of any mmapped chunk that
// is freed (up to 32 MiB), and its trim threshold to twice that. So one
// untouched ~32 MiB Buffer, freed by the next garbage collection, makes
// later buffers up to that size come from the heap, and up to 64 MiB of
// freed heap stay mapped for the next ones. Setting MALLOC_MMAP_THRESHOLD_
// and MALLOC_TRIM_THRESHOLD_ does the same, but only before the process
// starts, and npm's bin shims give no portable place to set them (busybox's
// env has no -S). Elsewhere (musl, macOS, Windows) this is one short-lived
// allocation that is never touched, so it costs nothing and changes nothing.
//
// Cost: after a burst, up to 64 MiB of freed memory may stay in the
// process's RSS instead of going back to the kernel.
//
// Not in the control plane: with the primer there, every run measured fell
// into V8 full collections every ~8 MiB moved (56-76 per 512 MiB; without
// it, some runs do and some have 1; cause not found). That was before the
// control plane got its heap flag (cli/relaunch.ts), which ended those
// collections; the primer has not been measured there since. End to end, with it in
// the CLI and agent only, 256 MiB down and up took 2.9-3.4 s and 7.4-8.9
// CPU-s against 3.9-4.8 s and 9.7-10.6 CPU-s without (three pairs, alternating).

/** Just under glibc's DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit): a larger chunk would not move the threshold. */
const PRIMER_BYTES = 32 * 1024 * 1024 - 64 * 1024;

/** CMDOP_MALLOC_REUSE=0 turns it off (to measure what it is worth). */
export function keepFreedMemoryForReuse(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.CMDOP_MALLOC_REUSE === '0') return false;
  // Never referenced again: the next GC frees it, and that free() is what moves glibc's thresholds.
  Buffer.allocUnsafeSlow(PRIMER_BYTES);
  return true;
}
