// How long each unary gRPC call takes, observed where grpc-js hands the call
// over and where its answer is given (cmdop_grpc_call_duration_seconds, by
// method and status code; transports/metrics/). Streams (Connect, Bulk,
// Attach, Download, Upload) live for as long as a session or a transfer, so
// their duration says nothing about latency: they are counted by the
// session, attachment and byte series instead.
import { status, type ServiceDefinition, type UntypedServiceImplementation, type sendUnaryData } from '@grpc/grpc-js';

/** Told of each unary call as it is answered: its method (`ClientService/OpenTerminal`), status code name, and seconds. */
export type CallObserver = (method: string, code: string, seconds: number) => void;

const CODE_NAMES = new Map<number, string>(
  Object.entries(status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [v as number, k]),
);

/** `impl` with each unary handler timed; stream handlers as they are. */
export function timeUnaryCalls(def: ServiceDefinition, impl: UntypedServiceImplementation, observe: CallObserver | undefined): UntypedServiceImplementation {
  if (!observe) return impl;
  const out: UntypedServiceImplementation = { ...impl };
  for (const [key, m] of Object.entries(def)) {
    const handler = impl[key];
    if (!handler || m.requestStream || m.responseStream) continue;
    const method = m.path.replace(/^\/cmdop\.v1\./, '');
    const unary = handler as (call: unknown, cb: sendUnaryData<unknown>) => void;
    out[key] = ((call: unknown, cb: sendUnaryData<unknown>) => {
      const start = process.hrtime.bigint();
      unary(call, (err, value, trailer, flags) => {
        const code = err ? (CODE_NAMES.get((err as { code?: number }).code ?? status.UNKNOWN) ?? 'UNKNOWN') : 'OK';
        observe(method, code, Number(process.hrtime.bigint() - start) / 1e9);
        cb(err, value, trailer, flags);
      });
    }) as UntypedServiceImplementation[string];
  }
  return out;
}
