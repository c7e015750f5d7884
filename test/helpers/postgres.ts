// The throwaway PostgreSQL lives in devcluster/ (`npm run cluster` starts one
// too); tests import it from here, as before.
export * from '../../devcluster/postgres';
