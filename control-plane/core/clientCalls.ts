// What clients ask of the control plane, whatever carries the asking: the
// machine and terminal calls, attaching to a terminal, and the file calls.
// A transport (gRPC, the console's WebSocket, HTTP for file bytes) has
// already authenticated the caller (CallContext); here is who may do what,
// the audit, and the protocol of each stream. Refusals are audited and
// answer only the request that was refused: they never end or change
// something another request owns.
import crypto from 'node:crypto';
import {
  AttachMode,
  ClientMessage,
  CloseTerminalRequest,
  CloseTerminalResponse,
  DownloadMessage,
  DownloadRequest,
  FileEntry,
  FilePathRequest,
  ListFilesRequest,
  ListFilesResponse,
  ListMachinesRequest,
  ListMachinesResponse,
  MachineInfo,
  ListTerminalsRequest,
  ListTerminalsResponse,
  MakeDirectoryRequest,
  MAX_FILE_CHUNK,
  MAX_PAGE_TOKEN,
  MAX_UPLOAD_IN_FLIGHT,
  OpenTerminalRequest,
  RemoveFileRequest,
  RemoveFileResponse,
  RenameFileRequest,
  TerminalInfo,
  UploadMessage,
  UploadReply,
  checkSize,
  isSignalName,
} from '../../protocol';
import type { Access, Principal } from './access';
import { ApiError, HeldElsewhere, asApiError, denied, invalid, isRefusal } from './errors';
import type { CallContext, ClientStream, ForwardedUnary, Forwarder, Inbound } from './ports';
import type { ReplicaRef } from './errors';
import type { Registry } from './registry';
import type { FileRouter } from './fileRouter';
import type { AttachStream, Attachment, TerminalRelay } from './relay';
import { auditedUnary, type UnaryCall } from './unary';
import { hop, hopNow, tracing } from '../../lib/hopTrace';
import type { Logger } from '../../lib/logger';

type AttachRequestMsg = NonNullable<Extract<ClientMessage['msg'], { $case: 'attach' }>>['value'];
type UploadOpen = Extract<UploadMessage['msg'], { $case: 'open' }>['value'];

function checkPath(path: string, what = 'path'): void {
  if (!path) throw invalid(`${what} is empty`);
  if (path.includes('\0')) throw invalid(`${what} contains a NUL byte`);
  if (Buffer.byteLength(path) > 4096) throw invalid(`${what} is longer than 4096 bytes`);
}

/**
 * The transfer id the agent is given: the client's, bound to its user. The
 * agent resumes a partial file for whoever opens its transfer id (taking it
 * over from an older upload still holding it), and the id can be seen in the
 * hidden file's name; bound to the user, another user who opens the same id
 * gets a partial file of their own and cannot take over, append to or end
 * someone else's upload.
 */
export function agentTransferId(userId: string, transferId: string): string {
  return crypto.createHash('sha256').update(`${userId}\0${transferId}`).digest('base64url').slice(0, 32);
}

/** How long the machine list waits for another replica's live figures. */
const PEER_LIST_MS = 1000;

/** `stream`, and `finished` once the core ends or fails it. */
function whenFinished<T>(stream: ClientStream<T>, finished: () => void): ClientStream<T> {
  return {
    write: (m) => stream.write(m),
    end: () => {
      finished();
      stream.end();
    },
    fail: (e) => {
      finished();
      stream.fail(e);
    },
    onDrain: (l) => stream.onDrain(l),
    get closed() {
      return stream.closed;
    },
  };
}

export class ClientCalls {
  /** Attachments, for the client heartbeat sweep. */
  private readonly attachments = new Set<Attachment>();
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly access: Access,
    private readonly logger: Logger,
    clientTimeoutS: number,
    /** The link to the other replicas; none for one control plane alone. */
    private readonly forwarder?: Forwarder,
  ) {
    // Clients send a heartbeat every 30 s; a stream that goes quiet for the
    // client timeout is closed. The session is untouched.
    this.sweep = setInterval(() => {
      const cutoff = Date.now() - clientTimeoutS * 1000;
      for (const a of this.attachments) {
        if (a.lastHeardMs < cutoff) {
          logger.info({ attachment: a.id, terminal: a.relay.id }, 'client heartbeat lost: closing its stream');
          a.relay.detach(a);
          this.attachments.delete(a);
          a.stream.fail(new ApiError('DEADLINE_EXCEEDED', `no client heartbeat for ${clientTimeoutS} s`, 'stream_dropped'));
        }
      }
    }, Math.min(5000, (clientTimeoutS * 1000) / 4));
    this.sweep.unref();
  }

  close(): void {
    clearInterval(this.sweep);
  }

  /**
   * A unary call. `forward`: it concerns one machine, and when that
   * machine's agent is on another replica, it is served there (the caller
   * was authorized here first: every such call checks rights before it
   * looks the machine up).
   */
  private unary<Req, Res>(action: string, fn: (req: Req, p: Principal, peer: string) => Res | Promise<Res>, forward?: ForwardedUnary): UnaryCall<Req, Res> {
    // Access is read when the call runs: these fields are made before the constructor's parameters are set.
    return async (ctx, req) => {
      try {
        return await auditedUnary(this.access, action, fn)(ctx, req);
      } catch (e) {
        const to = forward && this.forwardTo(ctx, e);
        if (to) return (await this.forwarder!.unary(to, forward!, ctx, req)) as Res;
        throw e;
      }
    };
  }

  /** Where a call that failed with `e` goes instead: the machine's owner, unless this call was forwarded here already. */
  private forwardTo(ctx: CallContext, e: unknown) {
    return e instanceof HeldElsewhere && this.forwarder && !ctx.forwardedBy ? e.owner : undefined;
  }

  /** The machine's file router, once `p` may act as `mode` on it. */
  private async routerFor(p: Principal, machine: string, mode: AttachMode) {
    await this.access.require(p, machine, mode);
    return (await this.registry.machine(machine)).files;
  }

  private auditFile(p: Principal | undefined, action: string, machine: string, detail: string, peer: string, ok = true): void {
    this.access.audit(p, { action, machine, detail, peer, ok });
  }

  // ---- machines and terminals

  readonly listMachines = this.unary<ListMachinesRequest, ListMachinesResponse>('list', async (_req, p, peer) => {
    const visible = await this.access.visibleMachines(p);
    const machines = await this.withLiveFigures(await this.registry.listMachines(), { principal: p, peer });
    return { machines: visible ? machines.filter((m) => visible.has(m.name)) : machines };
  });

  /**
   * What another replica asks for (PeerService.ListMachines): the machines
   * whose sessions this one holds, with their live figures.
   */
  readonly heldMachines = this.unary<ListMachinesRequest, ListMachinesResponse>('list', async () => ({
    machines: this.registry.sessions().map((s) => s.info()),
  }));

  /**
   * The store knows where each session is, not its agent's latest
   * heartbeat or its terminals: those come from the replica holding it.
   * One that does not answer within PEER_LIST_MS leaves the store's view.
   */
  private async withLiveFigures(machines: MachineInfo[], ctx: CallContext): Promise<MachineInfo[]> {
    if (!this.forwarder) return machines;
    const held = await Promise.all(
      (await this.registry.peers()).map((to) =>
        Promise.race([
          this.forwarder!.unary(to, 'listMachines', ctx, {}).then((r) => (r as ListMachinesResponse).machines, () => []),
          new Promise<MachineInfo[]>((resolve) => setTimeout(() => resolve([]), PEER_LIST_MS).unref()),
        ]),
      ),
    );
    const live = new Map(held.flat().map((m) => [m.sessionId, m]));
    return machines.map((m) => live.get(m.sessionId) ?? m);
  }

  readonly openTerminal = this.unary<OpenTerminalRequest, TerminalInfo>('open', async (req, p, peer) => {
    await this.access.require(p, req.machine, AttachMode.OPERATOR);
    const relay = await (await this.registry.machine(req.machine)).openTerminal(req.spec!);
    this.access.audit(p, { action: 'open', machine: req.machine, terminalId: relay.id, peer });
    return relay.info();
  }, 'openTerminal');

  readonly listTerminals = this.unary<ListTerminalsRequest, ListTerminalsResponse>('list', async (req, p) => {
    await this.access.require(p, req.machine, AttachMode.OBSERVER);
    return { terminals: [...(await this.registry.machine(req.machine)).terminals.values()].map((t) => t.info()) };
  }, 'listTerminals');

  readonly closeTerminal = this.unary<CloseTerminalRequest, CloseTerminalResponse>('close', async (req, p, peer) => {
    await this.access.require(p, req.machine, AttachMode.OPERATOR);
    (await this.registry.machine(req.machine)).closeTerminal(req.terminalId);
    this.access.audit(p, { action: 'close', machine: req.machine, terminalId: req.terminalId, peer });
    return {};
  }, 'closeTerminal');

  // ---- files (unary)

  // One page; the agent sizes it and checks the token (which is opaque here).
  readonly listFiles = this.unary<ListFilesRequest, ListFilesResponse>('file-list', async (req, p) => {
    checkPath(req.path);
    if (req.pageToken.length > MAX_PAGE_TOKEN) throw invalid(`page_token is longer than ${MAX_PAGE_TOKEN} characters: not one an agent issued`);
    const r = await (await this.routerFor(p, req.machine, AttachMode.OBSERVER)).request({
      $case: 'list',
      value: { path: req.path, pageSize: req.pageSize, pageToken: req.pageToken },
    });
    return { entries: r.entries, nextPageToken: r.nextPageToken, totalEntries: r.totalEntries };
  }, 'listFiles');

  readonly statFile = this.unary<FilePathRequest, FileEntry>('file-stat', async (req, p) => {
    checkPath(req.path);
    const r = await (await this.routerFor(p, req.machine, AttachMode.OBSERVER)).request({ $case: 'stat', value: { path: req.path } });
    return r.entry!;
  }, 'statFile');

  readonly makeDirectory = this.unary<MakeDirectoryRequest, FileEntry>('file-mkdir', async (req, p, peer) => {
    checkPath(req.path);
    const r = await (await this.routerFor(p, req.machine, AttachMode.OPERATOR)).request({ $case: 'mkdir', value: { path: req.path, parents: req.parents } });
    this.auditFile(p, 'file-mkdir', req.machine, req.path, peer);
    return r.entry!;
  }, 'makeDirectory');

  readonly removeFile = this.unary<RemoveFileRequest, RemoveFileResponse>('file-remove', async (req, p, peer) => {
    checkPath(req.path);
    await (await this.routerFor(p, req.machine, AttachMode.OPERATOR)).request({ $case: 'remove', value: { path: req.path, recursive: req.recursive } });
    this.auditFile(p, 'file-remove', req.machine, `${req.path}${req.recursive ? ' (recursive)' : ''}`, peer);
    return {};
  }, 'removeFile');

  readonly renameFile = this.unary<RenameFileRequest, FileEntry>('file-rename', async (req, p, peer) => {
    checkPath(req.from, 'from');
    checkPath(req.to, 'to');
    const r = await (await this.routerFor(p, req.machine, AttachMode.OPERATOR)).request({
      $case: 'rename',
      value: { from: req.from, to: req.to, overwrite: req.overwrite },
    });
    this.auditFile(p, 'file-rename', req.machine, `${req.from} -> ${req.to}`, peer);
    return r.entry!;
  }, 'renameFile');

  // ---- attach

  /**
   * An attach stream: its first message attaches (or opens and attaches);
   * then input, resizes, signals, heartbeats and acks. Requests are
   * answered on the stream under their ref; a refusal answers only itself.
   */
  attach(ctx: CallContext, stream: AttachStream): Inbound<ClientMessage> {
    const { principal, peer } = ctx;
    let attachment: Attachment | undefined;
    let starting = false;
    let failed = false;
    let untrack: (() => void) | undefined;
    let machine = '';
    /** The machine's agent is on another replica: everything goes there from the first message on. */
    let forwarded: Inbound<ClientMessage> | undefined;
    const fail = (e: unknown) => {
      if (failed) return;
      failed = true;
      if (attachment) attachment.relay.detach(attachment);
      forwarded?.gone(asApiError(e).message);
      if (isRefusal(e)) this.access.audit(principal, { action: 'attach', ok: false, detail: e.message, peer, machine });
      if (!stream.closed) stream.fail(asApiError(e));
    };
    const gone = (reason = 'the client went away') => {
      untrack?.();
      untrack = undefined;
      forwarded?.gone(reason);
      if (!attachment || !this.attachments.has(attachment)) return;
      attachment.relay.detach(attachment);
      this.attachments.delete(attachment);
      this.access.audit(principal, { action: 'detach', machine, terminalId: attachment.relay.id, mode: attachment.mode, peer });
    };
    const start = async (req: AttachRequestMsg): Promise<Attachment> => {
      const mode = req.mode;
      if (mode !== AttachMode.OPERATOR && mode !== AttachMode.OBSERVER) throw invalid('attach mode must be OPERATOR or OBSERVER');
      let relay: TerminalRelay;
      let fromSeq = req.fromSeq;
      if (req.open) {
        machine = req.open.machine || req.machine;
        if (mode !== AttachMode.OPERATOR) throw denied('an OBSERVER cannot open terminals');
        await this.access.require(principal, machine, AttachMode.OPERATOR);
        relay = await (await this.registry.machine(machine)).openTerminal(req.open.spec!);
        this.access.audit(principal, { action: 'open', machine, terminalId: relay.id, peer });
        fromSeq = 0;
      } else {
        machine = req.machine;
        await this.access.require(principal, machine, mode, req.terminalId);
        relay = (await this.registry.machine(machine)).terminal(req.terminalId);
      }
      if (stream.closed) throw new ApiError('UNAVAILABLE', 'the client went away while attaching', 'stream_dropped');
      return relay.attach(stream, mode, fromSeq, this.logger, req.acks);
    };
    /** The agent is on replica `to`: the stream goes on there, and a revocation seen here still ends it here. */
    const forward = (to: ReplicaRef, first: ClientMessage) => {
      untrack = this.access.track(principal, machine, (reason) => fail(new ApiError('PERMISSION_DENIED', reason)));
      forwarded = this.forwarder!.attach(to, ctx, whenFinished(stream, () => {
        untrack?.();
        untrack = undefined;
      }));
      forwarded.message(first);
    };
    return {
      message: (m) => {
        if (failed) return;
        if (forwarded) return forwarded.message(m);
        if (!attachment) {
          if (starting) return fail(new ApiError('FAILED_PRECONDITION', 'wait for `attached` before sending'));
          if (m.msg?.$case !== 'attach') return fail(invalid('the first message on an attach stream must be attach'));
          starting = true;
          start(m.msg.value)
            .catch((e) => {
              const to = this.forwardTo(ctx, e);
              if (!to) throw e;
              if (!failed) forward(to, m);
              return undefined;
            })
            .then((a) => {
              if (!a) return;
              attachment = a;
              this.attachments.add(a);
              this.access.audit(principal, { action: 'attach', machine, terminalId: a.relay.id, mode: a.mode, peer });
              // Revoking the token, share or grant behind this stream ends it at once.
              untrack = this.access.track(principal, machine, (reason) => {
                gone();
                stream.fail(new ApiError('PERMISSION_DENIED', reason));
              });
            })
            .catch(fail);
          return;
        }
        const a = attachment;
        try {
          const commandId = this.onAttachedMessage(a, m);
          if (commandId) this.access.audit(principal, { action: 'input', machine, terminalId: a.relay.id, mode: a.mode, commandId, peer });
        } catch (e) {
          const err = asApiError(e);
          if (err.code === 'PERMISSION_DENIED') {
            this.access.audit(principal, { action: m.msg?.$case ?? 'message', ok: false, detail: err.message, machine, terminalId: a.relay.id, mode: a.mode, peer });
          }
          const ref = (m.msg?.value as { ref?: string } | undefined)?.ref ?? '';
          a.send({ msg: { $case: 'error', value: { code: err.code, message: err.message, ref, reason: err.reason } } });
        }
      },
      end: () => {
        if (forwarded) return forwarded.end();
        gone();
        if (!stream.closed) stream.end();
      },
      gone,
    };
  }

  /** One message on an attached stream; returns the command_id of input it forwarded. */
  private onAttachedMessage(a: Attachment, m: ClientMessage): string | undefined {
    a.lastHeardMs = Date.now();
    const msg = m.msg;
    if (!msg) throw invalid('empty message');
    const relay = a.relay;
    switch (msg.$case) {
      case 'input': {
        const arrived = tracing() ? hopNow() : 0;
        const commandId = relay.input(a, msg.value.data, msg.value.eof);
        // Noted once named (the command id is made by relay.input), at the time it arrived.
        if (arrived) hop('cp.in', msg.value.ref, commandId, arrived);
        a.send({ msg: { $case: 'accepted', value: { commandId, ref: msg.value.ref } } });
        return commandId;
      }
      case 'resize': {
        if (a.mode !== AttachMode.OPERATOR) throw denied('this attachment is an OBSERVER: resize is refused');
        const err = checkSize(msg.value.cols, msg.value.rows);
        if (err) throw invalid(err);
        const { cols, rows, ref } = msg.value;
        relay.cols = cols;
        relay.rows = rows;
        relay.host.persist(relay);
        relay.host.sendToAgent({ msg: { $case: 'resize', value: { terminalId: relay.id, cols, rows } } });
        a.send({ msg: { $case: 'accepted', value: { commandId: '', ref } } });
        return undefined;
      }
      case 'signal': {
        if (a.mode !== AttachMode.OPERATOR) throw denied('this attachment is an OBSERVER: signals are refused');
        if (!isSignalName(msg.value.signal)) throw invalid(`unknown signal ${JSON.stringify(msg.value.signal)}`);
        relay.host.sendToAgent({ msg: { $case: 'signal', value: { terminalId: relay.id, signal: msg.value.signal } } });
        a.send({ msg: { $case: 'accepted', value: { commandId: '', ref: msg.value.ref } } });
        return undefined;
      }
      case 'heartbeat':
        return undefined;
      case 'ack':
        // What the client has received (AttachRequest.acks): it paces the terminal, and confirms the exit.
        relay.onClientAck(a, msg.value.seq, msg.value.exit);
        return undefined;
      case 'attach':
        throw new ApiError('FAILED_PRECONDITION', 'already attached; open another stream to attach elsewhere');
    }
  }

  // ---- file bytes

  /**
   * A download: the entry, then chunks as the stream takes them (the agent is
   * acknowledged as the client reads), then done with the agent's MD5.
   * Returns what the transport calls when the client goes away.
   */
  download(ctx: CallContext, req: DownloadRequest, stream: ClientStream<DownloadMessage>): { gone(reason: string): void } {
    const { principal, peer } = ctx;
    let finished = false;
    let handle: ReturnType<FileRouter['download']> | undefined;
    const fail = (e: unknown) => {
      if (finished) return;
      finished = true;
      if (isRefusal(e)) this.auditFile(principal, 'file-read', req.machine, e.message, peer, false);
      if (!stream.closed) stream.fail(asApiError(e));
    };
    void (async () => {
      checkPath(req.path);
      const router = await this.routerFor(principal, req.machine, AttachMode.OBSERVER);
      if (finished) return; // the client went away meanwhile
      if (req.offset === 0) this.auditFile(principal, 'file-read', req.machine, req.path, peer);
      handle = router.download(
        { path: req.path, offset: req.offset, expectMtimeMs: req.expectMtimeMs, expectSize: req.expectSize },
        {
          entry: (e) => stream.write({ msg: { $case: 'entry', value: e } }),
          chunk: (c) => stream.write({ msg: { $case: 'chunk', value: c } }),
          done: (d) => {
            finished = true;
            stream.write({ msg: { $case: 'done', value: d } });
            stream.end();
          },
          fail,
        },
      );
      // The client's buffer emptied: the agent may send more.
      stream.onDrain(() => handle?.resume());
    })().catch((e) => {
      const to = this.forwardTo(ctx, e);
      if (to && !finished) forwarded = this.forwarder!.download(to, ctx, req, stream);
      else fail(e);
    });
    /** The machine's agent is on another replica: the download is served there. */
    let forwarded: { gone(reason: string): void } | undefined;
    return {
      gone: (reason) => {
        finished = true;
        handle?.cancel(reason);
        forwarded?.gone(reason);
      },
    };
  }

  /**
   * An upload: `open` first (rights, the destination, a resume offset from
   * the agent), then chunks in order within MAX_UPLOAD_IN_FLIGHT of the
   * agent's acknowledgements, then `done` with the client's MD5.
   */
  upload(ctx: CallContext, stream: ClientStream<UploadReply>): Inbound<UploadMessage> {
    const { principal, peer } = ctx;
    let handle: ReturnType<FileRouter['upload']> | undefined;
    let opening = false;
    let finished = false;
    let doneSent = false;
    let machine = '';
    let path = '';
    /** Next offset expected from the client, and what the agent has written. */
    let sent = 0;
    let written = 0;
    /** The machine's agent is on another replica: the upload is served there. */
    let forwarded: Inbound<UploadMessage> | undefined;
    const fail = (e: unknown) => {
      if (finished) return;
      finished = true;
      const err = asApiError(e);
      handle?.cancel(err.message);
      if (isRefusal(err)) this.auditFile(principal, 'file-write', machine, err.message, peer, false);
      if (!stream.closed) stream.fail(err);
    };
    const open = async (o: UploadOpen) => {
      machine = o.machine;
      path = o.path;
      checkPath(o.path);
      if (!o.transferId || !/^[A-Za-z0-9_-]{1,64}$/.test(o.transferId)) throw invalid('transfer_id must be 1-64 letters, digits, - or _');
      const router = await this.routerFor(principal, o.machine, AttachMode.OPERATOR);
      if (finished) return; // the client went away meanwhile
      handle = router.upload(
        { path: o.path, size: o.size, mode: o.mode, overwrite: o.overwrite, transferId: agentTransferId(principal.user.id, o.transferId) },
        {
          opened: (resumeOffset) => {
            sent = written = resumeOffset;
            stream.write({ msg: { $case: 'opened', value: { resumeOffset } } });
          },
          ack: (a) => {
            written = a.offset;
            stream.write({ msg: { $case: 'ack', value: a } });
          },
          done: (e) => {
            finished = true;
            this.auditFile(principal, 'file-write', machine, `${path} (${e.size} bytes)`, peer);
            stream.write({ msg: { $case: 'done', value: e } });
            stream.end();
          },
          fail,
        },
      );
    };
    return {
      message: (m) => {
        if (finished) return;
        const msg = m.msg;
        try {
          if (forwarded) return forwarded.message(m);
          if (!handle) {
            if (opening) throw new ApiError('FAILED_PRECONDITION', 'wait for `opened` before sending chunks');
            if (msg?.$case !== 'open') throw invalid('the first message of an upload must be open');
            opening = true;
            open(msg.value).catch((e) => {
              const to = this.forwardTo(ctx, e);
              if (!to || finished) return fail(e);
              // The machine's agent is on another replica: the upload goes on there, this open first.
              forwarded = this.forwarder!.upload(to, ctx, stream);
              forwarded.message(m);
            });
            return;
          }
          if (msg?.$case === 'chunk') {
            const c = msg.value;
            if (c.data.length === 0 || c.data.length > MAX_FILE_CHUNK) throw invalid(`a chunk must be 1 byte to ${MAX_FILE_CHUNK} bytes, not ${c.data.length}`);
            if (c.offset !== sent) throw invalid(`chunk at offset ${c.offset}, expected ${sent}: chunks must come in order`);
            sent += c.data.length;
            if (sent - written > MAX_UPLOAD_IN_FLIGHT) {
              throw new ApiError('RESOURCE_EXHAUSTED', `more than ${MAX_UPLOAD_IN_FLIGHT} bytes sent without acknowledgement: wait for acks`);
            }
            handle.chunk({ offset: c.offset, data: c.data });
          } else if (msg?.$case === 'done') {
            doneSent = true;
            handle.done({ md5: msg.value.md5, size: msg.value.size });
          } else {
            throw invalid('after open, an upload carries only chunk and done');
          }
        } catch (e) {
          fail(e);
        }
      },
      end: () => {
        if (forwarded) return forwarded.end();
        if (!finished && !doneSent) fail(new ApiError('FAILED_PRECONDITION', 'the upload ended before `done`: the partial file is kept for a resume'));
      },
      // `discard`: a client that will not resume (the console's HTTP uploads) has the partial file removed.
      gone: (reason, discard) => {
        finished = true;
        handle?.cancel(reason, !!discard);
        forwarded?.gone(reason, discard);
      },
    };
  }
}
