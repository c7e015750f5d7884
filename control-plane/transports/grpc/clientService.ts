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
import type { ApiError } from '../../core/errors';
import type { UnaryCall } from '../../core/unary';
import { clientAuthenticator, clientStream, feed, whenAuthenticated, type Authenticator } from './streams';
import { grpcUnary } from './unary';
import { grpcStatus } from './status';

/** A download's chunk encoded here with one copy (protocol/fastEncode.ts); everything else by the generic serializer. */
const fastChunks = (m: DownloadMessage): DownloadMessage | Encoded =>
  m.msg?.$case === 'chunk' ? encodeFileChunkEnvelope(FILE_CHUNK_FIELD.download, m.msg.value.requestId, m.msg.value.offset, m.msg.value.data) : m;

/**
 * The calls that concern one machine, served to whoever `auth` admits:
 * clients on the client port (ClientService), other replicas forwarding
 * their clients' calls on the peer port (PeerService, transports/peer/).
 */
export function machineCallHandlers(calls: ClientCalls, auth: Authenticator) {
  /** A stream whose caller is refused: audited or logged (the core never saw it), then ended with its status. */
  const refuse = (action: string, call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>) => (e: ApiError) => {
    auth.refused(action, call, e);
    call.emit('error', grpcStatus(e));
  };
  return {
    openTerminal: grpcUnary(auth, 'open', calls.openTerminal),
    listTerminals: grpcUnary(auth, 'list', calls.listTerminals),
    closeTerminal: grpcUnary(auth, 'close', calls.closeTerminal),
    listFiles: grpcUnary(auth, 'file-list', calls.listFiles),
    statFile: grpcUnary(auth, 'file-stat', calls.statFile),
    makeDirectory: grpcUnary(auth, 'file-mkdir', calls.makeDirectory),
    removeFile: grpcUnary(auth, 'file-remove', calls.removeFile),
    renameFile: grpcUnary(auth, 'file-rename', calls.renameFile),

    attach(call: ServerDuplexStream<ClientMessage, ServerMessage | Encoded>): void {
      whenAuthenticated(auth, call, (ctx) => feed(call, calls.attach(ctx, clientStream(call)), 'client'), refuse('attach', call));
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
        auth,
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
      whenAuthenticated(auth, call, (ctx) => feed(call, calls.upload(ctx, clientStream(call)), 'client'), refuse('file-write', call));
    },
  };
}

/** ClientService: the machine list, and every call on one machine. */
export function clientServiceHandlers(calls: ClientCalls, access: Access) {
  const auth = clientAuthenticator(access);
  return { listMachines: grpcUnary(auth, 'list', calls.listMachines), ...machineCallHandlers(calls, auth) };
}

export function authServiceHandlers(auth: ReturnType<typeof authCalls>, access: Access): UntypedServiceImplementation {
  const { getServerInfo, ...authed } = auth;
  const handlers: UntypedServiceImplementation = {
    getServerInfo: (_call: ServerUnaryCall<unknown, ServerInfo>, cb: sendUnaryData<ServerInfo>) => {
      getServerInfo().then((r) => cb(null, r), (e) => cb(grpcStatus(e)));
    },
  };
  // Each call's action in the audit is its name (whoAmI, createToken, ...) when its token is refused.
  const client = clientAuthenticator(access);
  for (const [name, fn] of Object.entries(authed)) handlers[name] = grpcUnary(client, name, fn as UnaryCall<unknown, unknown>) as UntypedHandleCall;
  return handlers;
}
