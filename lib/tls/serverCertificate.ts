// The control plane's TLS certificate: generated once, self-signed, kept in
// the data directory and reused (every client has pinned its fingerprint), or
// loaded from files the operator gives. How clients trust it without a CA is
// sdk/trust/firstUse.ts.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { mkdirPrivate, writeFileAtomic } from '../privateFile';
import { errMessage } from '../errors';
import { fingerprintOf } from './fingerprint';
import type * as SelfsignedModule from 'selfsigned';

/** A certificate and its private key, both PEM, plus the certificate's fingerprint. */
export interface CertMaterial {
  certPem: string;
  keyPem: string;
  /** SHA-256 of the DER certificate, "AB:CD:..." (Node's fingerprint256). */
  fingerprint: string;
  /** True when this call created the files (the server should print the fingerprint). */
  generated: boolean;
}

const TEN_YEARS_MS = 10 * 365.25 * 24 * 3600 * 1000;
// Backdated so that a client whose clock runs behind the server's does not
// reject a certificate generated a moment ago as "not yet valid".
const BACKDATE_MS = 24 * 3600 * 1000;


/**
 * Load the control plane's certificate from `dataDir/tls/{cert,key}.pem`, or
 * generate and store one if neither file exists.
 *
 * The certificate must stay the same across restarts: every client has pinned
 * its fingerprint, and a new one makes them all refuse to connect. That is
 * why it is generated once and reused, valid for ten years, and why a half
 * pair (one file missing) is an error rather than a silent regeneration.
 *
 * `extraNames` are added as subject alternative names (IPs as IP SANs, the
 * rest as DNS SANs) for clients that do hostname checks (e.g. a browser on
 * the web port); cmdop's own clients pin the fingerprint and ignore names.
 * They only matter at generation: an existing certificate is never rewritten.
 */
export async function ensureSelfSignedCert(dataDir: string, extraNames: string[] = []): Promise<CertMaterial> {
  const dir = path.join(dataDir, 'tls');
  const certPath = path.join(dir, 'cert.pem');
  const keyPath = path.join(dir, 'key.pem');
  const haveCert = fs.existsSync(certPath);
  const haveKey = fs.existsSync(keyPath);
  if (haveCert && haveKey) return loadCertFiles(certPath, keyPath);
  if (haveCert !== haveKey) {
    const [present, missing] = haveCert ? [certPath, keyPath] : [keyPath, certPath];
    throw new Error(
      `TLS certificate pair is incomplete: ${present} exists but ${missing} does not. ` +
        `Restore the missing file, or delete ${present} to generate a new certificate ` +
        `(every client that pinned the old one will then refuse to connect until told to trust the new one).`,
    );
  }

  const { certPem, keyPem } = await generateCert(subjectAltNames(extraNames));
  mkdirPrivate(dir, true);
  // Key first: a crash between the two writes then leaves a key without a
  // certificate, which the check above reports, never a certificate without
  // the key that proves it.
  writeFileAtomic(keyPath, keyPem, 0o600);
  writeFileAtomic(certPath, certPem, 0o644);
  return { certPem, keyPem, fingerprint: fingerprintOf(certPem), generated: true };
}

/**
 * Load a certificate and key given by the operator (e.g. `--tls-cert`,
 * `--tls-key`), checking that both parse and that the key belongs to the
 * certificate, so a mistake shows up at startup with the file named rather
 * than as an opaque handshake failure on every client.
 */
export function loadCertFiles(certPath: string, keyPath: string): CertMaterial {
  const certPem = readPem(certPath, 'certificate');
  const keyPem = readPem(keyPath, 'private key');
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certPem);
  } catch (e) {
    throw new Error(`TLS certificate ${certPath} is not a valid PEM certificate: ${errMessage(e)}`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(keyPem);
  } catch (e) {
    throw new Error(`TLS private key ${keyPath} is not a valid unencrypted PEM private key: ${errMessage(e)}`);
  }
  let matches = false;
  try {
    matches = cert.checkPrivateKey(key);
  } catch {
    matches = false; // e.g. an RSA key against an EC certificate
  }
  if (!matches) {
    throw new Error(`TLS private key ${keyPath} does not match the certificate ${certPath}`);
  }
  return { certPem, keyPem, fingerprint: cert.fingerprint256, generated: false };
}

/** gRPC server credentials for the certificate. No client certificates: clients authenticate with tokens. */
export function serverCredentials(c: { certPem: string; keyPem: string }): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(
    null,
    [{ cert_chain: Buffer.from(c.certPem), private_key: Buffer.from(c.keyPem) }],
    false,
  );
}

function subjectAltNames(extraNames: string[]): Array<{ type: 2; value: string } | { type: 7; ip: string }> {
  const names = ['localhost', '127.0.0.1', '::1', os.hostname(), ...extraNames]
    .map((n) => n.trim().replace(/^\[(.*)\]$/, '$1'))
    .filter((n) => n !== '');
  const seen = new Set<string>();
  const out: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [];
  for (const n of names) {
    const key = n.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(net.isIP(n) ? { type: 7, ip: n } : { type: 2, value: n });
  }
  return out;
}

async function generateCert(altNames: ReturnType<typeof subjectAltNames>): Promise<{ certPem: string; keyPem: string }> {
  // Required here, not at the top: selfsigned brings @peculiar/x509, asn1js and
  // their kin (~100 ms to load), which only a server generating its certificate
  // needs, while every TLS client (the CLI, agents) imports this module.
  const selfsigned: typeof SelfsignedModule = require('selfsigned');
  const now = Date.now();
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'cmdop control plane' }], {
    keyType: 'ec', // P-256: small, fast, and accepted by every TLS stack we meet
    curve: 'P-256',
    algorithm: 'sha256', // selfsigned defaults to SHA-1, which modern OpenSSL refuses
    notBeforeDate: new Date(now - BACKDATE_MS),
    notAfterDate: new Date(now + TEN_YEARS_MS),
    extensions: [
      // A plain leaf (not a CA): OpenSSL 3 accepts a self-signed leaf as the
      // only trust anchor, and a leaked key then cannot mint other trusted certs.
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  return { certPem: pems.cert, keyPem: pems.private };
}

function readPem(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'is not readable (permission denied)' : errMessage(e);
    throw new Error(`TLS ${what} ${file} ${why}`);
  }
  if (!text.includes('-----BEGIN ')) {
    throw new Error(`TLS ${what} ${file} is not PEM (no "-----BEGIN" line)`);
  }
  return text;
}
