// `cmdop trust`, run (its options are in ../commands/trust.ts).
import { KnownServers } from '../../sdk';
import { parseServerAddress } from '../../lib/serverAddress';
import { knownServersFile } from '../../lib/paths';
import { fail, table } from '../output';

export function trust(o: { forget?: string }): void {
  const known = new KnownServers(knownServersFile());
  if (o.forget) {
    const a = parseServerAddress(o.forget.includes('://') ? o.forget : `grpcs://${o.forget}`);
    if (!known.forget(`${a.host}:${a.port}`)) fail(`no pin for ${a.host}:${a.port} in ${knownServersFile()}`);
    process.stdout.write(`forgot the pin for ${a.host}:${a.port}; the next connection pins what it presents\n`);
    return;
  }
  const list = known.list();
  const rows = [['SERVER', 'SHA256 FINGERPRINT', 'PINNED']];
  for (const k of list) rows.push([k.address, k.fingerprint, k.pinnedAt]);
  process.stdout.write(list.length ? table(rows) : 'No pinned servers.\n');
}
