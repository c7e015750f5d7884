import { Command } from 'commander';
import { KnownServers } from '../../lib/tls';
import { parseServerAddress } from '../../lib/serverAddress';
import { knownServersFile } from '../paths';
import { fail, table } from '../output';

export function registerTrust(program: Command): void {
  program
    .command('trust')
    .description('the control plane certificates this user has pinned (like ssh known_hosts)')
    .option('--forget <address>', 'forget a pin, to accept a server\'s new certificate on purpose')
    .addHelpText('after', `\nPins live in ${knownServersFile()}.\nSet CMDOP_TLS_FINGERPRINT to require an exact fingerprint instead of trusting on first use.`)
    .action((o) => {
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
    });
}
