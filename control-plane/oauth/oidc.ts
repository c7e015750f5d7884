// The one place that loads oidc-provider. It is an ES module only; this
// project compiles to CommonJS, and Node >= 20.19 can require() an ES module
// (no top-level await in it), which is what happens below. TypeScript's
// node16 mode does not model require(esm), so types come in through
// `resolution-mode: import` and the value through a typed require().
import type * as OidcModule from 'oidc-provider' with { 'resolution-mode': 'import' };

export type {
  Adapter,
  AdapterPayload,
  Configuration,
  JWK,
  KoaContextWithOIDC,
  ErrorOut,
} from 'oidc-provider' with { 'resolution-mode': 'import' };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const oidc = require('oidc-provider') as typeof OidcModule;

export type Provider = OidcModule.default;
export const Provider = oidc.default;
export const errors = oidc.errors;
export const interactionPolicy = oidc.interactionPolicy;

type GrantHandler = (ctx: OidcModule.KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;

/**
 * oidc-provider 8's own device_code grant handler. It answers
 * authorization_pending / expired_token / access_denied but never slow_down
 * (it has the error class and no setting that uses it), so provider.ts
 * re-registers the grant with a polling-rate check in front of this handler.
 * The package has no "exports" map, so this path is reachable; it is checked
 * at load so a layout change in an upgrade fails loudly at startup.
 */
export const deviceCodeGrant = require('oidc-provider/lib/actions/grants/device_code.js') as {
  handler: GrantHandler;
  parameters: Set<string>;
};
if (typeof deviceCodeGrant.handler !== 'function' || !(deviceCodeGrant.parameters instanceof Set)) {
  throw new Error('oidc-provider layout changed: lib/actions/grants/device_code.js has no handler/parameters');
}
