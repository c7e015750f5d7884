// An agent's own credential: obtained once by enrollment (a one-time token
// from `cmdop agents enroll`, or a person signing in with the device flow)
// and kept in the agent's state dir (0600), per control plane.
import fs from 'node:fs';
import path from 'node:path';
import { writePrivateJson } from '../../lib/privateFile';
import { CmdopClient } from '../client';
import { UnauthenticatedError } from '../errors';
import type { Connection } from '../connect';
import { deviceLogin, type DevicePresenter } from './deviceLogin';

export interface StoredCredential {
  machine: string;
  tokenId: string;
  token: string;
}

/**
 * Where an agent keeps its credentials, per control plane. The headless
 * agent uses a 0600 file in its state dir; the desktop app encrypts them
 * with the OS keychain (Electron's safeStorage) behind the same interface.
 */
export interface CredentialStore {
  read(server: string): StoredCredential | undefined;
  save(server: string, c: StoredCredential): void;
  /** Where it is kept, for messages. */
  readonly where: string;
}

const fileOf = (stateDir: string) => path.join(stateDir, 'credentials.json');

export function fileCredentialStore(stateDir: string): CredentialStore {
  const file = fileOf(stateDir);
  const readAll = (): Record<string, StoredCredential> => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new Error(`cannot read ${file}: ${(e as Error).message}`);
    }
  };
  return {
    where: file,
    read: (server) => readAll()[server],
    save: (server, c) => writePrivateJson(file, { ...readAll(), [server]: c }),
  };
}

export interface EnrollOptions {
  stateDir: string;
  machine: string;
  /** The user chose the name (--name); otherwise an enrollment token's machine wins. */
  nameGiven: boolean;
  enrollToken?: string;
  /** The access token of a user already signed in (the desktop app): enroll the machine as theirs. */
  userToken?: string;
  /** A person is here: sign in with the device flow when there is no other way (needs `present`). */
  interactive: boolean;
  log(line: string): void;
  /** Default: the file in stateDir. */
  store?: CredentialStore;
  /** Shows the device flow's URL and code to the person (the CLI prints them, cli/deviceCode.ts). */
  present?: DevicePresenter;
}

/**
 * The agent's credential for this control plane: the stored one if the
 * server still takes it, else a new one from the enrollment token or a
 * device-flow sign-in. Throws with what to do when there is none.
 */
export async function agentCredential(conn: Connection, o: EnrollOptions): Promise<{ token: string; machine: string }> {
  const key = conn.address.display;
  const store = o.store ?? fileCredentialStore(o.stateDir);
  const stored = store.read(key);
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
      if (!o.enrollToken && !o.userToken && !o.interactive) throw new Error(`the control plane no longer accepts this agent's credential (${e.message}); enroll it again`);
      o.log(`the stored credential was refused (${e.message}); enrolling again`);
    } finally {
      probe.close();
    }
  }
  let token = o.enrollToken ?? o.userToken;
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
      if (!o.present) throw new Error('enrolling interactively needs a way to show the sign-in code (EnrollOptions.present)');
      o.log(`enrolling ${o.machine}: sign in as the user who will own it`);
      token = (await deviceLogin(conn, client, { present: o.present })).accessToken;
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
    store.save(key, { machine: issued.info!.machine, tokenId: issued.info!.id, token: issued.token });
    o.log(`enrolled ${o.machine} with ${key} (credential ${issued.info!.id}, kept in ${store.where})`);
    return { token: issued.token, machine: issued.info!.machine };
  } finally {
    client.close();
  }
}
