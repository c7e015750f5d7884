// The TypeScript SDK: `new CmdopClient({server})`, then machines, terminals
// and `terminal.execute(...)`. The CLI is built on it; so is the console's
// gateway later - one copy of the protocol handling.
import * as grpc from '@grpc/grpc-js';
import {
  AttachMode,
  AuthServiceDefinition,
  ClientServiceDefinition,
  DEFAULT_TIMEOUTS,
  HTTP2_WINDOW,
  MAX_CLIENT_MESSAGE,
  MAX_INPUT_BYTES,
  MachineInfo,
  OutputGap,
  OutputStream,
  TerminalInfo,
  typedClient,
  type DuplexCalls,
  type DuplexMethods,
  type DuplexCall,
  type ServerStreamCall,
  type ServerStreamCalls,
  type RequestOf,
  type ResponseOf,
  type ServerStreamMethods,
  type TypedClient,
  type UnaryCalls,
  type UnaryMethods,
} from '../protocol';
import { execSpec, shellSpec } from '../protocol/terminalSpec';
import { AttachCall, AttachTransport, TerminalAttachment } from './attachment';
import { AuthApi } from './auth';
import { FilesApi } from './files';
import { parseServerList } from '../lib/serverAddress';
import { LIST_CHANNEL_OPTIONS, registerListResolver } from '../lib/listResolver';
import { ListTrust, listChannelCredentials } from './trust/replicaTrust';
import { ClientOptions, RETRY_BACKOFF, ResolvedClientOptions, resolveClientOptions } from './config';
import { Backoff } from '../protocol/backoff';
import { InvalidArgumentError, NotDeliveredError, fromServiceError } from './errors';

type ClientService = typeof ClientServiceDefinition;
type AuthService = typeof AuthServiceDefinition;
const ClientServiceClient = typedClient(ClientServiceDefinition);
const AuthServiceClient = typedClient(AuthServiceDefinition);

export type Mode = 'operator' | 'observer';

export interface AttachOptions {
  mode?: Mode;
  /** Re-attach: the bytes after this offset. Absent: the current screen, then live output. */
  fromSeq?: number;
  machine?: string;
}

export interface CreateTerminalOptions {
  machine?: string;
  cols?: number;
  rows?: number;
  title?: string;
  cwd?: string;
  env?: Record<string, string>;
}

export interface SpawnOptions {
  machine?: string;
  /** Run in a PTY (stdout and stderr merged, as on a terminal). */
  pty?: boolean;
  cols?: number;
  rows?: number;
  cwd?: string;
  env?: Record<string, string>;
}

export interface ExecuteOptions extends SpawnOptions {
  /** Bytes for the command's stdin; without it stdin is closed at once (like `ssh -n`). */
  stdin?: string | Uint8Array;
  /** Every chunk as it arrives. */
  onOutput?(data: Uint8Array, stream: 'stdout' | 'stderr' | 'pty'): void;
}

export interface ExecResult {
  exitCode: number;
  /** Set when the command was killed by a signal (exitCode is then 128 + its number). */
  signal: string;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
  stderrBytes: Buffer;
  terminalId: string;
  /** Output ranges that could not be delivered (never silently): empty when complete. */
  gaps: OutputGap[];
}

const toAttachMode = (m: Mode | undefined) => (m === 'observer' ? AttachMode.OBSERVER : AttachMode.OPERATOR);

export class CmdopClient {
  readonly options: ResolvedClientOptions;
  readonly machines: MachinesApi;
  readonly terminal: TerminalApi;
  /** Files on machines: list, stat, mkdir, remove, rename, read/write, download/upload. */
  readonly files: FilesApi;
  readonly auth: AuthApi;
  private grpcClient: TypedClient<ClientService>;
  private authClient: TypedClient<AuthService>;
  private readonly closing: (() => void)[] = [];

  /**
   * A plaintext HOST:PORT, or a grpcs:// URL verified against the system's
   * CAs; pass `credentials` for anything else (the CLI passes a pinned
   * self-signed certificate's, see sdk/trust/firstUse.ts). Several addresses are tried
   * in order: every call goes to the first that answers, and after a
   * failure to the first that answers then.
   */
  constructor(options: ClientOptions = {}) {
    this.options = resolveClientOptions(options);
    const list = parseServerList(this.options.server);
    const several = list.entries.length > 1;
    if (several) registerListResolver();
    const credentials =
      options.credentials ??
      (!list.tls
        ? grpc.credentials.createInsecure()
        : several
          ? listChannelCredentials(list.entries, new ListTrust({ requireCa: true }))
          : grpc.credentials.createSsl());
    this.grpcClient = new ClientServiceClient(list.target, credentials, {
      'grpc.max_receive_message_length': 8 * 1024 * 1024,
      'grpc.max_send_message_length': MAX_CLIENT_MESSAGE,
      'grpc.keepalive_time_ms': DEFAULT_TIMEOUTS.keepaliveS * 1000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc-node.flow_control_window': HTTP2_WINDOW,
      ...(several ? LIST_CHANNEL_OPTIONS : {}),
      ...options.channelOptions,
    });
    this.authClient = new AuthServiceClient(list.target, credentials, { channelOverride: this.grpcClient.getChannel() });
    this.machines = new MachinesApi(this);
    this.files = new FilesApi(this);
    this.terminal = new TerminalApi(this);
    this.auth = new AuthApi(this);
  }

  /** Replaces the bearer token (e.g. after a refresh); calls and re-attaches from now on carry it. */
  setToken(token: string | undefined): void {
    this.options.token = token;
  }

  /** The machine terminal calls use when they name none. */
  setMachine(name: string): void {
    this.options.machine = name;
  }

  close(): void {
    for (const fn of this.closing.splice(0)) fn();
    this.authClient.close();
    this.grpcClient.close();
  }

  /** @internal Runs `fn` when the client is closed (connect.ts stops refreshing its token). */
  onClose(fn: () => void): void {
    this.closing.push(fn);
  }

  /** @internal */
  machineOr(name: string | undefined): string {
    const m = name ?? this.options.machine;
    if (!m) throw new InvalidArgumentError('no machine given: pass one, call setMachine(), or set CMDOP_MACHINE');
    return m;
  }

  /** @internal */
  metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    if (this.options.token) md.set('authorization', `Bearer ${this.options.token}`);
    return md;
  }

  /** @internal A unary call of ClientService, by method name; its request and response types come from the proto. */
  unary<K extends UnaryMethods<ClientService>>(method: K, req: RequestOf<ClientService, K>): Promise<ResponseOf<ClientService, K>> {
    return this.callUnary<ClientService, K>(this.grpcClient, method, req);
  }

  /** @internal A unary call of AuthService, by method name. */
  authUnary<K extends UnaryMethods<AuthService>>(method: K, req: RequestOf<AuthService, K>): Promise<ResponseOf<AuthService, K>> {
    return this.callUnary<AuthService, K>(this.authClient, method, req);
  }

  private callUnary<S extends ClientService | AuthService, K extends UnaryMethods<S>>(
    calls: UnaryCalls<S>,
    method: K,
    req: RequestOf<S, K>,
  ): Promise<ResponseOf<S, K>> {
    return new Promise((resolve, reject) => {
      // grpc-js passes a response whenever it passes no error.
      calls[method](req, this.metadata(), (err, res) => (err ? reject(fromServiceError(err, this.options.server)) : resolve(res!)));
    });
  }

  /** @internal A server-streaming call of ClientService (Download). */
  serverStream<K extends ServerStreamMethods<ClientService>>(
    method: K,
    req: RequestOf<ClientService, K>,
  ): ServerStreamCall<ResponseOf<ClientService, K>> {
    const calls: ServerStreamCalls<ClientService> = this.grpcClient;
    return calls[method](req, this.metadata());
  }

  /** @internal A bidirectional call of ClientService (Attach, Upload). */
  duplex<K extends DuplexMethods<ClientService>>(
    method: K,
  ): DuplexCall<RequestOf<ClientService, K>, ResponseOf<ClientService, K>> {
    const calls: DuplexCalls<ClientService> = this.grpcClient;
    return calls[method](this.metadata());
  }

  /** @internal */
  transport(): AttachTransport {
    return {
      server: this.options.server,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      reconnectTimeoutMs: this.options.reconnectTimeoutMs,
      openStream: (): AttachCall => this.grpcClient.attach(this.metadata()),
      pause: (ms) => untilConnected(this.grpcClient.getChannel(), ms),
    };
  }
}

/**
 * Resolves after `ms`, or as soon as the channel becomes READY if it is not
 * now (with several addresses: when it has reached the next one). A
 * channel already READY waits the whole time: the failure was not its
 * connection's.
 */
function untilConnected(channel: ReturnType<grpc.Client['getChannel']>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const deadline = Date.now() + ms;
    const timer = setTimeout(resolve, ms);
    const watch = (first: boolean) => {
      let state: grpc.connectivityState;
      try {
        state = channel.getConnectivityState(true);
      } catch {
        return; // closed: the timer ends the wait
      }
      if (state === grpc.connectivityState.READY) {
        if (!first) {
          clearTimeout(timer);
          resolve();
        }
        return;
      }
      if (Date.now() >= deadline) return;
      try {
        channel.watchConnectivityState(state, deadline, (err) => {
          if (!err) watch(false);
        });
      } catch {
        // closed meanwhile
      }
    };
    watch(true);
  });
}

class MachinesApi {
  constructor(private client: CmdopClient) {}

  async list(): Promise<MachineInfo[]> {
    const res = await this.client.unary('listMachines', {});
    return res.machines;
  }
}

class TerminalApi {
  constructor(private client: CmdopClient) {}

  /** Opens an interactive shell terminal (a tab). */
  create(opts: CreateTerminalOptions = {}): Promise<TerminalInfo> {
    return this.client.unary('openTerminal', {
      machine: this.client.machineOr(opts.machine),
      spec: shellSpec(opts),
    });
  }

  async list(machine?: string): Promise<TerminalInfo[]> {
    const res = await this.client.unary('listTerminals', {
      machine: this.client.machineOr(machine),
    });
    return res.terminals;
  }

  attach(terminalId: string, opts: AttachOptions = {}): Promise<TerminalAttachment> {
    return TerminalAttachment.start(this.client.transport(), {
      machine: this.client.machineOr(opts.machine),
      terminalId,
      open: undefined,
      mode: toAttachMode(opts.mode),
      fromSeq: opts.fromSeq,
      acks: true,
    });
  }

  /** Opens a shell terminal and attaches to it as OPERATOR in one step. */
  open(opts: CreateTerminalOptions = {}): Promise<TerminalAttachment> {
    const machine = this.client.machineOr(opts.machine);
    return TerminalAttachment.start(this.client.transport(), {
      machine,
      terminalId: '',
      open: { machine, spec: shellSpec(opts) },
      mode: AttachMode.OPERATOR,
      fromSeq: undefined,
      acks: true,
    });
  }

  /** Runs one operator action on a short-lived attachment. */
  private async withOperator<T>(terminalId: string, machine: string | undefined, fn: (a: TerminalAttachment) => Promise<T>): Promise<T> {
    const a = await this.attach(terminalId, { machine, fromSeq: Number.MAX_SAFE_INTEGER }).catch(async (e) => {
      // fromSeq past the head is refused; attach at the head instead.
      if (e instanceof InvalidArgumentError) {
        const info = (await this.list(machine)).find((t) => t.terminalId === terminalId);
        return this.attach(terminalId, { machine, fromSeq: info?.headSeq ?? 0 });
      }
      throw e;
    });
    try {
      return await fn(a);
    } finally {
      a.close();
    }
  }

  sendInput(terminalId: string, data: string | Uint8Array, opts: { machine?: string } = {}): Promise<string[]> {
    return this.withOperator(terminalId, opts.machine, (a) => a.write(data));
  }

  resize(terminalId: string, cols: number, rows: number, opts: { machine?: string } = {}): Promise<void> {
    return this.withOperator(terminalId, opts.machine, (a) => a.resize(cols, rows));
  }

  signal(terminalId: string, signal: string, opts: { machine?: string } = {}): Promise<void> {
    return this.withOperator(terminalId, opts.machine, (a) => a.signal(signal));
  }

  async close(terminalId: string, opts: { machine?: string } = {}): Promise<void> {
    await this.client.unary('closeTerminal', { machine: this.client.machineOr(opts.machine), terminalId });
  }

  /**
   * Starts a command and attaches to it as its OPERATOR, for a caller that
   * streams: resolves once it runs, with the live attachment. Its events
   * carry the output as it comes (`output`, with the chunk's stream: stdout,
   * stderr or pty), `gap`, `exit`, and the connection's `reconnecting` /
   * `reconnected`; `write()` sends stdin and `eof()` closes it (without a
   * PTY, the command sees EOF only then), `resize()` and `signal()` act on
   * it, `pause()`/`resume()` give backpressure, `done` resolves with the
   * exit. A string runs through the remote user's shell; an array is
   * executed as is. `cmdop exec` is built on it, `-t` included (a PTY, raw
   * keystrokes through `write()`, the window size through `resize()`).
   */
  async spawn(command: string | string[], opts: SpawnOptions = {}): Promise<TerminalAttachment> {
    const machine = this.client.machineOr(opts.machine);
    return TerminalAttachment.start(this.client.transport(), {
      machine,
      terminalId: '',
      open: { machine, spec: execSpec(command, opts) },
      mode: AttachMode.OPERATOR,
      fromSeq: undefined,
      acks: true,
    });
  }

  /**
   * Runs a command to completion and returns its exit code and output. A
   * string runs through the remote user's shell; an array is executed as is.
   * Survives the loss of the client's or the agent's connection inside the
   * grace period: output arrives whole, once.
   */
  async execute(command: string | string[], opts: ExecuteOptions = {}): Promise<ExecResult> {
    const a = await this.spawn(command, opts);
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    const gaps: OutputGap[] = [];
    a.on('output', (data, chunk) => {
      const stream = chunk.stream === OutputStream.STDERR ? 'stderr' : chunk.stream === OutputStream.STDOUT ? 'stdout' : 'pty';
      (stream === 'stderr' ? err : out).push(data);
      opts.onOutput?.(data, stream);
    });
    a.on('gap', (g) => gaps.push(g));
    // Stdin and its end must arrive even across a cut (else a command that
    // reads stdin never ends): retried while the machine is unreachable. A
    // command that exits before reading them is not an error, as with a pipe.
    // Only what certainly did not arrive is sent again, piece by piece, so
    // nothing is duplicated.
    const deliver = async (send: () => Promise<unknown>) => {
      for (const backoff = new Backoff(RETRY_BACKOFF); ; ) {
        try {
          await send();
          return;
        } catch (e) {
          if (a.exit || !(e instanceof NotDeliveredError)) return;
          await new Promise((r) => setTimeout(r, backoff.next()));
        }
      }
    };
    const input = (async () => {
      if (opts.stdin !== undefined) {
        const bytes = typeof opts.stdin === 'string' ? Buffer.from(opts.stdin) : opts.stdin;
        for (let i = 0; i < bytes.length; i += MAX_INPUT_BYTES) {
          const piece = bytes.subarray(i, i + MAX_INPUT_BYTES);
          await deliver(() => a.sendInput(piece));
        }
      }
      if (!opts.pty) await deliver(() => a.eof());
    })();
    const exit = await a.done;
    await input;
    // The stream ends once the control plane has our confirmation of the
    // exit: when execute() returns, nothing of it is left open.
    await a.over;
    const stdoutBytes = Buffer.concat(out);
    const stderrBytes = Buffer.concat(err);
    return {
      exitCode: exit.exitCode,
      signal: exit.signal,
      stdout: stdoutBytes.toString('utf8'),
      stderr: stderrBytes.toString('utf8'),
      stdoutBytes,
      stderrBytes,
      terminalId: a.terminalId,
      gaps,
    };
  }
}

