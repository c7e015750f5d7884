// Bearer secrets the control plane issues itself (admin, API, agent,
// enrollment and share tokens). They are random, carry their kind in a
// prefix (so a misplaced one gets a precise error, and secret scanners can
// spot them), and are stored only as a SHA-256 hash: 256 random bits need
// no slow hash, and a hash lookup makes revocation immediate.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { TokenKind } from '../../protocol';

const PREFIX: Partial<Record<TokenKind, string>> = {
  [TokenKind.ADMIN]: 'cmdop_adm_',
  [TokenKind.API]: 'cmdop_pat_',
  [TokenKind.AGENT]: 'cmdop_agt_',
  [TokenKind.ENROLLMENT]: 'cmdop_enr_',
  [TokenKind.SHARE]: 'cmdop_shr_',
};

export function newSecret(kind: TokenKind): string {
  return PREFIX[kind] + randomBytes(32).toString('base64url');
}

/** The kind a secret claims by its prefix; undefined for anything else (an OAuth access token). */
export function kindOfSecret(token: string): TokenKind | undefined {
  for (const [k, p] of Object.entries(PREFIX)) if (token.startsWith(p!)) return Number(k) as TokenKind;
  return undefined;
}

export const hashSecret = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Short public ids for listing and revoking, e.g. tok_3f9a1c2e. */
export const newId = (prefix: string): string => `${prefix}_${randomBytes(5).toString('hex')}`;

// Passwords are low-entropy, so they get scrypt (node's built-in KDF).
const scryptAsync = promisify(scrypt) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, 32);
  return `scrypt$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, salt, key] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !key) return false;
  const want = Buffer.from(key, 'base64');
  const got = await scryptAsync(password, Buffer.from(salt, 'base64'), want.length);
  return timingSafeEqual(want, got);
}

/** A password a person can type: 4 groups of 5 from an unambiguous alphabet (~100 bits). */
export function generatePassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(20);
  let s = '';
  for (let i = 0; i < 20; i++) s += alphabet[bytes[i] % alphabet.length] + (i % 5 === 4 && i < 19 ? '-' : '');
  return s;
}
