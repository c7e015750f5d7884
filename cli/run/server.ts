// `cmdop server`, run (its options are in ../commands/server.ts).
import { startControlPlane, parseListen } from '../../control-plane/server';
import { ensureSelfSignedCert, loadCertFiles } from '../../lib/tls';
import { fail } from '../output';

export interface ServerOptions {
  listen: string;
  dataDir: string;
  store?: string;
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
  oauthPollInterval?: number;
  oauthAccessTtl?: number;
  uploadResume?: number;
}

export async function runServer(o: ServerOptions): Promise<void> {
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
    oauth: {
      pollIntervalS: o.oauthPollInterval,
      ttl: o.oauthAccessTtl ? { accessToken: o.oauthAccessTtl } : undefined,
    },
  }).catch((e) => fail(e.message));
  process.stdout.write(`cmdop control plane listening on ${cp.address} (data: ${o.dataDir}; store: ${cp.db.where})\n`);
  process.stdout.write(`  console and sign-in: ${cp.webUrl}/   admin token: ${cp.adminTokenFile}\n`);
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
