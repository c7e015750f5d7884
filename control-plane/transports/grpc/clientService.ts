// ClientService and AuthService over gRPC: each call authenticated from its
// metadata as it opens, then served by the core (core/clientCalls.ts,
// core/authCalls.ts); the core's errors become gRPC statuses.
import type { ServerDuplexStream, ServerUnaryCall, ServerWritableStream, UntypedHandleCall, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js';
import {
  ClientMessage,
  DownloadMessage,
  DownloadRequest,
  Encoded,
  FILE_CHUNK_FIELD,
  ServerInfo,
  ServerMessage,
  UploadMessage,
  UploadReply,
  encodeFileChunkEnvelope,
} from '../../../protocol';
import type { Access } from '../../core/access';
import type { authCalls } from '../../core/authCalls';
import type { ClientCalls } from '../../core/clientCalls';
import { isRefusal } from '../../core/errors';
import type { UnaryCall } from '../../core/unary';
import { clientStream, feed, whenAuthenticated } from './streams';
import { grpcUnary } from './unary';
import { grpcStatus } from './status';

/** A download's chunk encoded here with one copy (protocol/fastEncode.ts); everything else by the generic serializer. */
const fastChunks = (m: DownloadMessage): DownloadMessage | Encoded =>
  m.msg?.$case === 'chunk' ? encodeFileChunkEnvelope(FILE_CHUNK_FIELD.download, m.msg.value.requestId, m.msg.value.offset, m.msg.value.data) : m;

export function clientServiceHandlers(calls: ClientCalls, access: Access) {
  /** A stream whose token is refused: audited (the core never saw it), then ended with UNAUTHENTICATED. */
  const refuse = (action: string, call: { getPeer(): string; emit(e: 'error', s: unknown): boolean }) => (e: unknown) => {
    if (isRefusal(e)) access.audit(undefined, { action, ok: false, detail: e.message, peer: call.getPeer() });
    call.emit('error', grpcStatus(e));
  };
  return {
    listMachines: grpcUnary(access, 'list', calls.listMachines),
    openTerminal: grpcUnary(access, 'open', calls.openTerminal),
    listTerminals: grpcUnary(access, 'list', calls.listTerminals),
    closeTerminal: grpcUnary(access, 'close', calls.closeTerminal),
    listFiles: grpcUnary(access, 'file-list', calls.listFiles),
    statFile: grpcUnary(access, 'file-stat', calls.statFile),
    makeDirectory: grpcUnary(access, 'file-mkdir', calls.makeDirectory),
    removeFile: grpcUnary(access, 'file-remove', calls.removeFile),
    renameFile: grpcUnary(access, 'file-rename', calls.renameFile),

    attach(call: ServerDuplexStream<ClientMessage, ServerMessage | Encoded>): void {
      whenAuthenticated(access, call, (ctx) => feed(call, calls.attach(ctx, clientStream(call)), 'client'), refuse('attach', call));
    },

    download(call: ServerWritableStream<DownloadRequest, DownloadMessage | Encoded>): void {
      // Listened for from the start: a client gone while its token is checked must not leave a read open on the agent.
      let gone: ((reason: string) => void) | undefined;
      let cancelled = false;
      call.on('cancelled', () => {
        cancelled = true;
        gone?.('the client went away');
      });
      whenAuthenticated(
        access,
        call,
        (ctx) => {
          const handle = calls.download(ctx, call.request, clientStream(call, fastChunks));
          if (cancelled) handle.gone('the client went away');
          else gone = handle.gone;
        },
        refuse('file-read', call),
      );
    },

    upload(call: ServerDuplexStream<UploadMessage, UploadReply>): void {
      whenAuthenticated(access, call, (ctx) => feed(call, calls.upload(ctx, clientStream(call)), 'client'), refuse('file-write', call));
    },
  };
}

export function authServiceHandlers(auth: ReturnType<typeof authCalls>, access: Access): UntypedServiceImplementation {
  const { getServerInfo, ...authed } = auth;
  const handlers: UntypedServiceImplementation = {
    getServerInfo: (_call: ServerUnaryCall<unknown, ServerInfo>, cb: sendUnaryData<ServerInfo>) => {
      getServerInfo().then((r) => cb(null, r), (e) => cb(grpcStatus(e)));
    },
  };
  // Each call's action in the audit is its name (whoAmI, createToken, ...) when its token is refused.
  for (const [name, fn] of Object.entries(authed)) handlers[name] = grpcUnary(access, name, fn as UnaryCall<unknown, unknown>) as UntypedHandleCall;
  return handlers;
}
