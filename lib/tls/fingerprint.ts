// Certificate fingerprints in Node's `fingerprint256` format: uppercase hex
// pairs separated by colons, over the certificate's DER bytes. That is the
// same value `openssl x509 -noout -fingerprint -sha256` prints, so an operator
// can compare them by eye out of band.
import * as crypto from 'node:crypto';

/** The SHA-256 fingerprint of a PEM certificate, "AB:CD:...". */
export function fingerprintOf(pem: string): string {
  return new crypto.X509Certificate(pem).fingerprint256;
}

/**
 * Canonicalize a fingerprint typed or pasted by a user: with or without
 * colons, any case, optionally prefixed "SHA256:" (or openssl's
 * "sha256 Fingerprint="). Returns "AB:CD:..."; throws if it is not 32 bytes
 * of hex, so a truncated paste is an error rather than a never-matching pin.
 */
export function normalizeFingerprint(s: string): string {
  const hex = s
    .trim()
    .replace(/^sha-?256\s*(fingerprint)?\s*[:=]\s*/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) {
    throw new Error(`not a SHA-256 certificate fingerprint: "${s}" (expected 64 hex digits, e.g. AB:CD:...)`);
  }
  return hex.match(/../g)!.join(':');
}

/** A DER certificate (as a TLS peer presents it) in PEM. */
export function derToPem(der: Buffer): string {
  const b64 = der.toString('base64').match(/.{1,64}/g)!.join('\n');
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
