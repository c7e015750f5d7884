// Credentials at rest, encrypted by the operating system's keychain
// (Electron's safeStorage: Keychain on macOS, DPAPI on Windows, libsecret or
// kwallet on Linux). The file holds only ciphertext; it is still written
// 0600. Where no keychain is available, safeStorage would fall back to a
// hard-coded key on Linux ("basic_text"): that protects nothing, so the app
// refuses it unless the user has agreed, and says why.
import fs from 'node:fs';
import path from 'node:path';
import { mkdirPrivate, writeFileAtomic } from '../../lib/privateFile';
import type { CredentialStore, StoredCredential } from '../../sdk/signin/agentCredential';
import { withLockFile, type LoginStore, type StoredLogin } from '../../sdk/signin/logins';

/** The part of Electron's safeStorage used here (tests pass a stand-in). */
export interface SecretBox {
  isEncryptionAvailable(): boolean;
  encryptString(plain: string): Buffer;
  decryptString(cipher: Buffer): string;
  /** Linux: which backend; 'basic_text' means no real keychain. */
  getSelectedStorageBackend?(): string;
}

interface Vault {
  /** Agent credentials per control plane. */
  agents: Record<string, StoredCredential>;
  /** The user's sign-in per control plane (remote control planes only). */
  logins: Record<string, StoredLogin>;
}

export class SecretFile {
  constructor(
    private readonly box: SecretBox,
    readonly file: string,
  ) {}

  /** Why secrets cannot be kept, or undefined when they can. */
  unavailable(): string | undefined {
    if (!this.box.isEncryptionAvailable()) return 'the system keychain is not available';
    if (this.box.getSelectedStorageBackend?.() === 'basic_text') {
      return 'no keychain (libsecret or kwallet) is running, and the fallback key would not protect anything';
    }
    return undefined;
  }

  read(): Vault {
    let raw: Buffer;
    try {
      raw = fs.readFileSync(this.file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { agents: {}, logins: {} };
      throw e;
    }
    const why = this.unavailable();
    if (why) throw new Error(`cannot read ${this.file}: ${why}`);
    let v: Partial<Vault>;
    try {
      v = JSON.parse(this.box.decryptString(raw)) as Partial<Vault>;
    } catch (e) {
      throw new Error(`cannot decrypt ${this.file} (${(e as Error).message}): was it copied from another user or machine? Delete it and sign in again`);
    }
    return { agents: v.agents ?? {}, logins: v.logins ?? {} };
  }

  update(fn: (v: Vault) => void): void {
    const why = this.unavailable();
    if (why) throw new Error(`cannot keep credentials: ${why}`);
    const v = this.read();
    fn(v);
    mkdirPrivate(path.dirname(this.file));
    writeFileAtomic(this.file, this.box.encryptString(JSON.stringify(v)), 0o600);
  }

  /** The agent credential store the enrollment code uses. */
  agentStore(): CredentialStore {
    return {
      where: `${this.file} (encrypted by the system keychain)`,
      read: (server) => this.read().agents[server],
      save: (server, c) => this.update((v) => void (v.agents[server] = c)),
    };
  }

  /**
   * The user's sign-ins as the SDK's refresher sees them (sdk/signin/logins.ts
   * freshLogin): refreshed one at a time under `FILE.lock`, as `cmdop
   * login`'s file is under its own.
   */
  loginStore(): LoginStore {
    return {
      get: (server) => this.login(server),
      set: (server, l) => this.setLogin(server, l),
      locked: (fn) => withLockFile(`${this.file}.lock`, fn),
    };
  }

  login(server: string): StoredLogin | undefined {
    return this.read().logins[server];
  }

  setLogin(server: string, l: StoredLogin | undefined): void {
    this.update((v) => {
      if (l) v.logins[server] = l;
      else delete v.logins[server];
    });
  }
}
