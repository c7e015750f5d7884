// `cmdop server`, run (its options are in ../commands/server.ts).
import { startControlPlane, parseListen } from '../../control-plane/server';
import { ensureSelfSignedCert, loadCertFiles } from '../../lib/tls/serverCertificate';
import fs from 'node:fs';
import { fail } from '../output';

export interface ServerOptions {
  listen: string;
  dataDir: string;
  store?: string;
  bus?: string;
  peerListen?: string;
  clusterSecretFile?: string;
  gracePeriod: number;
  backgroundTimeout: number;
  heartbeatTimeout: number;
  clientTimeout: number;
  heartbeatInterval: number;
  tls?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  insecure?: boolean;
  webListen?: string;
  publicUrl?: string;
  metricsListen?: string;
  oauthPollInterval?: number;
  oauthAccessTtl?: number;
  uploadResume?: number;
}

export async function runServer(o: ServerOptions): Promise<void> {
  if (o.bus && !o.store) fail('--bus goes with --store postgres://...: replicas share one store (a bus alone has nothing to coordinate)');
  const peer = o.peerListen ? { listen: o.peerListen, secret: clusterSecret(o) } : undefined;
  if (peer && !o.store) fail('--peer-listen goes with --store postgres://...: replicas share one store');
  const { tlsCert, tlsKey } = o;
  if (!!tlsCert !== !!tlsKey) fail('--tls-cert and --tls-key go together');
  const tls = tlsCert && tlsKey
    ? (() => {
        try {
          return loadCertFiles(tlsCert, tlsKey);
        } catch (e) {
          return fail((e as Error).message);
        }
      })()
    : o.tls
      ? await ensureSelfSignedCert(o.dataDir, [parseListen(o.listen).host]).catch((e) => fail(e.message))
      : undefined;
  const cp = await startControlPlane({
    listen: o.listen,
    dataDir: o.dataDir,
    store: o.store,
    bus: o.bus,
    peer,
    gracePeriodS: o.gracePeriod,
    backgroundTimeoutS: o.backgroundTimeout,
    heartbeatTimeoutS: o.heartbeatTimeout,
    clientTimeoutS: o.clientTimeout,
    heartbeatIntervalS: o.heartbeatInterval,
    uploadResumeS: o.uploadResume,
    tls,
    insecure: !!o.insecure,
    webListen: o.webListen,
    publicUrl: o.publicUrl,
    metricsListen: o.metricsListen,
    oauth: {
      pollIntervalS: o.oauthPollInterval,
      ttl: o.oauthAccessTtl ? { accessToken: o.oauthAccessTtl } : undefined,
    },
  }).catch((e) => fail(e.message));
  process.stdout.write(`cmdop control plane listening on ${cp.address} (data: ${o.dataDir}; store: ${cp.db.where})\n`);
  if (peer) process.stdout.write(`  replica ${cp.replica.id}: other replicas forward to ${cp.replica.peerAddress}\n`);
  process.stdout.write(`  console and sign-in: ${cp.webUrl}/   admin token: ${cp.adminTokenFile}\n`);
  if (cp.metricsUrl) process.stdout.write(`  metrics: ${cp.metricsUrl}\n`);
  if (tls) process.stdout.write(`  TLS certificate SHA256 ${tls.fingerprint}\n`);
  let stopping = false;
  const stop = () => {
    // Once: a Ctrl-C reaches this process twice when it runs under cli/relaunch.ts (the terminal's, and the one passed on).
    if (stopping) return;
    stopping = true;
    cp.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** The cluster secret: from --cluster-secret-file, else CMDOP_CLUSTER_SECRET; long enough not to be guessed. */
function clusterSecret(o: ServerOptions): string {
  let secret = process.env.CMDOP_CLUSTER_SECRET ?? '';
  if (o.clusterSecretFile) {
    try {
      secret = fs.readFileSync(o.clusterSecretFile, 'utf8').trim();
    } catch (e) {
      fail(`cannot read --cluster-secret-file: ${(e as Error).message}`);
    }
  }
  if (!secret) fail('--peer-listen needs the cluster secret: --cluster-secret-file FILE or CMDOP_CLUSTER_SECRET (e.g. openssl rand -hex 32)');
  if (secret.length < 32) fail(`the cluster secret is ${secret.length} characters; use at least 32 (e.g. openssl rand -hex 32)`);
  return secret;
}
