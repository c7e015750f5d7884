// The throwaway nats-server lives in devcluster/ (`npm run cluster` starts one
// too); tests import it from here, as before.
export * from '../../devcluster/nats';
