// Which folder may import which: the rules of docs/ARCHITECTURE.md, section 2,
// checked by `npm run lint:imports` (part of `npm test`). An import that
// breaks one fails the test run, unless it is listed in
// .dependency-cruiser-known-violations.json: the debts that section lists,
// each to be fixed and taken out of that file (never added to it).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A module cycle makes load order matter and folders impossible to take apart.',
      from: {},
      to: { circular: true, dependencyTypesNot: ['type-only'], viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'electron-only-in-main-shell',
      severity: 'error',
      comment: "Only app/main/main.ts and preload.ts touch Electron; everything else runs under plain Node (tests, the headless agent).",
      from: { pathNot: '^app/main/(main|preload)\\.ts$' },
      to: { path: '^electron$|node_modules/electron/' , dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'agent-is-a-plain-library',
      severity: 'error',
      comment: 'app/agent runs headless (cmdop-agent) and inside the desktop app: it may use protocol/ and lib/ only.',
      from: { path: '^app/agent/' },
      to: { path: '^(cli|sdk|control-plane|app/main|app/renderer|devcluster|bench|test)/' },
    },
    {
      name: 'desktop-not-through-the-cli',
      severity: 'error',
      comment: 'The desktop app connects through the SDK, not the CLI (the folders would form a cycle: cli/run/agent.ts imports app/agent).',
      from: { path: '^app/main/' },
      to: { path: '^cli/' },
    },
    {
      name: 'desktop-main-runs-no-servers',
      severity: 'error',
      comment: "The Electron main process keeps windows, tray and power events; the control plane and the agent run in their own processes (app/host/), reached over app/host/channel.ts. So app/main loads neither at run time.",
      from: { path: '^app/main/' },
      to: { path: '^control-plane/|^app/agent/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'desktop-main-talks-to-hosts-over-the-channel',
      severity: 'error',
      comment: 'app/main starts the host processes by module path (app/main/hosts.ts); importing a host entry would run it in the main process.',
      from: { path: '^app/main/' },
      to: { path: '^app/host/', pathNot: '^app/host/channel\\.ts$' },
    },
    {
      name: 'desktop-hosts-are-servers',
      severity: 'error',
      comment: "app/host/ is the desktop app's server processes: the control plane through its composition root (control-plane/server.ts, never its adapters or store), the agent, the SDK's connecting, lib and protocol. Never electron (the electron rule), the CLI or the main process's code.",
      from: { path: '^app/host/' },
      to: { path: '^(cli|app/main|app/renderer|devcluster|bench|test)/|^control-plane/(transports|core|db|auth|oauth|cluster)/' },
    },
    {
      name: 'console-browser-safe',
      severity: 'error',
      comment: 'The console runs in a browser: only browser-safe shared files.',
      from: { path: '^app/renderer/' },
      to: {
        path: '^(protocol|sdk|lib|cli|control-plane|app/agent|app/main)/',
        pathNot: '^(protocol/generated/|protocol/(limits|liveness|backoff|terminalSpec|errors)\\.ts$|sdk/attachProtocol\\.ts$|sdk/gateway\\.ts$)',
      },
    },
    {
      name: 'browser-safe-shared-files',
      severity: 'error',
      comment: 'What the console imports from sdk/ and protocol/ must itself stay browser-safe.',
      from: { path: '^(sdk/attachProtocol|sdk/gateway|protocol/(limits|liveness|backoff|terminalSpec|errors))\\.ts$' },
      to: { path: '^(lib|cli|control-plane|app)/|^node:|^(fs|net|os|path|child_process|http|https|tls)$', pathNot: '^protocol/generated/' },
    },
    {
      name: 'sdk-stands-alone',
      severity: 'error',
      comment: 'The SDK is a library: it may use protocol/ and lib/, never the CLI, the control plane or the apps.',
      from: { path: '^sdk/' },
      to: { path: '^(cli|control-plane|app|devcluster|bench|test)/' },
    },
    {
      name: 'shared-code-below-everything',
      severity: 'error',
      comment: 'lib/ and protocol/ are shared by every part; they import nothing of the parts.',
      from: { path: '^(lib|protocol)/' },
      to: { path: '^(cli|sdk|control-plane|app|devcluster|bench|test)/' },
    },
    {
      name: 'control-plane-not-clients',
      severity: 'error',
      comment: 'The control plane serves clients; it never imports them.',
      from: { path: '^control-plane/' },
      to: { path: '^(cli|app|devcluster|bench|test)/' },
    },
    {
      name: 'control-plane-core-transport-neutral',
      severity: 'error',
      comment: 'The core is transport-neutral behind core/ports.ts (also test/layout.test.ts).',
      from: { path: '^control-plane/core/' },
      to: { path: '^control-plane/transports/|^@grpc/grpc-js$|node_modules/@grpc/grpc-js/|^ws$|node_modules/ws/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'product-not-tests',
      severity: 'error',
      comment: 'Shipped code never imports tests or benchmarks.',
      from: { path: '^(app|cli|sdk|control-plane|lib|protocol)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|release)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
