// An agent's own credential: obtained once by enrollment (a one-time token
// from `cmdop agents enroll`, or a person signing in with the device flow)
// and kept in the agent's state dir (0600), per control plane.
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateJson } from '../../lib/privateFile';
import { CmdopClient, UnauthenticatedError } from '../../sdk';
import type { Connection } from '../connection';
import { deviceLogin } from './deviceLogin';

interface StoredCredential {
  machine: string;
  tokenId: string;
  token: string;
}

const fileOf = (stateDir: string) => path.join(stateDir, 'credentials.json');

function readAll(stateDir: string): Record<string, StoredCredential> {
  try {
    return JSON.parse(fs.readFileSync(fileOf(stateDir), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new Error(`cannot read ${fileOf(stateDir)}: ${(e as Error).message}`);
  }
}

function save(stateDir: string, server: string, c: StoredCredential): void {
  const all = readAll(stateDir);
  all[server] = c;
  writePrivateJson(fileOf(stateDir), all);
}

export interface EnrollOptions {
  stateDir: string;
  machine: string;
  /** The user chose the name (--name); otherwise an enrollment token's machine wins. */
  nameGiven: boolean;
  enrollToken?: string;
  /** A person is here: sign in with the device flow when there is no other way. */
  interactive: boolean;
  log(line: string): void;
}

/**
 * The agent's credential for this control plane: the stored one if the
 * server still takes it, else a new one from the enrollment token or a
 * device-flow sign-in. Throws with what to do when there is none.
 */
export async function agentCredential(conn: Connection, o: EnrollOptions): Promise<{ token: string; machine: string }> {
  const key = conn.address.display;
  const stored = readAll(o.stateDir)[key];
  if (stored && !o.nameGiven && !o.enrollToken) o.machine = stored.machine;
  if (stored && stored.machine !== o.machine && !o.enrollToken) {
    throw new Error(`this agent is enrolled as ${stored.machine} on ${key}, not ${o.machine}: use --name ${stored.machine}, or enroll again with --enroll-token`);
  }
  if (stored && stored.machine === o.machine) {
    const probe = new CmdopClient({ server: key, credentials: conn.credentials, channelOptions: conn.channelOptions, token: stored.token });
    try {
      await probe.auth.whoami();
      return { token: stored.token, machine: stored.machine };
    } catch (e) {
      // Unreachable now: keep the credential, the agent retries. Refused: enroll again if we can.
      if (!(e instanceof UnauthenticatedError)) return { token: stored.token, machine: stored.machine };
      if (!o.enrollToken && !o.interactive) throw new Error(`the control plane no longer accepts this agent's credential (${e.message}); enroll it again`);
      o.log(`the stored credential was refused (${e.message}); enrolling again`);
    } finally {
      probe.close();
    }
  }
  let token = o.enrollToken;
  const client = new CmdopClient({ server: key, credentials: conn.credentials, channelOptions: conn.channelOptions });
  try {
    if (!token) {
      if (!o.interactive) {
        throw new Error(
          `this agent is not enrolled with ${key}. Either:\n` +
            `  - where you are signed in: cmdop agents enroll --name ${o.machine}   then here: cmdop agent --name ${o.machine} --enroll-token TOKEN\n` +
            `  - or run \`cmdop agent\` here on a terminal (or with --login) to sign in and enroll it as yourself`,
        );
      }
      o.log(`enrolling ${o.machine}: sign in as the user who will own it`);
      token = (await deviceLogin(conn, client, { browser: true })).accessToken;
    }
    client.setToken(token);
    if (o.enrollToken) {
      // Check the name before spending the one-time token.
      const me = await client.auth.whoami();
      if (o.nameGiven && me.machine !== o.machine) {
        throw new Error(`the enrollment token is for machine ${me.machine}, not ${o.machine}: run with --name ${me.machine}`);
      }
      o.machine = me.machine;
    }
    const issued = await client.auth.enrollAgent(o.enrollToken ? '' : o.machine);
    save(o.stateDir, key, { machine: issued.info!.machine, tokenId: issued.info!.id, token: issued.token });
    o.log(`enrolled ${o.machine} with ${key} (credential ${issued.info!.id}, kept in ${fileOf(o.stateDir)})`);
    return { token: issued.token, machine: issued.info!.machine };
  } finally {
    client.close();
  }
}
