import type { Command } from 'commander';
import { DEFAULT_SERVER } from '../protocol';

/** --server, else CMDOP_SERVER, else the local default `cmdop up` listens on. */
export function serverAddress(cmd: Command): string {
  return (cmd.optsWithGlobals().server as string | undefined) ?? process.env.CMDOP_SERVER ?? DEFAULT_SERVER;
}
