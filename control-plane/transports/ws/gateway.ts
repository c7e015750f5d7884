// The browser gateway: WebSocket upgrades on /ws of the web port. The token
// comes in the Sec-WebSocket-Protocol header (browsers cannot set
// Authorization on a WebSocket) and is verified before the upgrade is
// accepted. Because the browser never attaches that header by itself, a
// page on another origin cannot ride a user's session (no cross-site
// WebSocket hijacking), so no Origin allow-list is needed.
//
// Calls and attach streams go to the core (core/clientCalls.ts,
// core/authCalls.ts) with the same caller context a gRPC call would have,
// so the rules (roles, audit, revocation) are the same code. The token is
// checked again for every call and stream (a revoked one stops working at
// once, even on a socket opened before).
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { GATEWAY_PATH, GATEWAY_PROTOCOL, GatewayCall, GatewayClientFrame, GatewayReply, MAX_CLIENT_MESSAGE } from '../../../protocol';
import type { Access } from '../../core/access';
import { ApiError, asApiError } from '../../core/errors';
import type { ClientCalls } from '../../core/clientCalls';
import type { CallContext } from '../../core/ports';
import type { UnaryCall } from '../../core/unary';
import type { Logger } from '../../../lib/logger';
import { GatewayStream } from './stream';
import { replyFrame } from './frames';

const BEARER = 'bearer.';
/** A dead page (laptop lid closed) is noticed within two of these. */
const PING_MS = 20_000;

export interface GatewayDeps {
  access: Access;
  calls: ClientCalls;
  whoAmI: UnaryCall<never, unknown>;
  logger: Logger;
}

type Request = NonNullable<GatewayCall['request']>;

/** The core call for each unary request the page may make. */
function unaryFor(deps: GatewayDeps, r: Request): UnaryCall<unknown, unknown> {
  const c = deps.calls;
  const table: Record<Request['$case'], UnaryCall<never, unknown>> = {
    listMachines: c.listMachines,
    openTerminal: c.openTerminal,
    listTerminals: c.listTerminals,
    closeTerminal: c.closeTerminal,
    whoAmI: deps.whoAmI,
    listFiles: c.listFiles,
    statFile: c.statFile,
    makeDirectory: c.makeDirectory,
    removeFile: c.removeFile,
    renameFile: c.renameFile,
  };
  return table[r.$case] as UnaryCall<unknown, unknown>;
}

export function createGateway(deps: GatewayDeps) {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_MESSAGE,
    handleProtocols: (protocols) => (protocols.has(GATEWAY_PROTOCOL) ? GATEWAY_PROTOCOL : false),
  });
  const sockets = new Set<WebSocket>();

  /** For the web server's 'upgrade' event; false when the path is not ours. */
  function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if ((req.url ?? '').split('?')[0] !== GATEWAY_PATH) return false;
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((s) => s.trim());
    const bearer = offered.find((p) => p.startsWith(BEARER));
    const refuse = (code: number, message: string) => {
      socket.end(`HTTP/1.1 ${code} ${code === 401 ? 'Unauthorized' : 'Bad Request'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${message}\n`);
    };
    if (!offered.includes(GATEWAY_PROTOCOL)) {
      refuse(400, `offer the WebSocket subprotocol ${GATEWAY_PROTOCOL}`);
      return true;
    }
    if (!bearer) {
      deps.access.audit(undefined, { action: 'gateway', ok: false, detail: 'no token', peer: req.socket.remoteAddress ?? '' });
      refuse(401, 'no token: offer the subprotocol bearer.TOKEN');
      return true;
    }
    const token = bearer.slice(BEARER.length);
    deps.access
      .principalOf(token)
      .then(() => {
        wss.handleUpgrade(req, socket, head, (ws) => serve(ws, token, `ws:${req.socket.remoteAddress}:${req.socket.remotePort}`));
      })
      .catch((e: unknown) => {
        const message = e instanceof ApiError ? e.message : String(e);
        deps.access.audit(undefined, { action: 'gateway', ok: false, detail: message, peer: req.socket.remoteAddress ?? '' });
        refuse(401, message);
      });
    return true;
  }

  function serve(ws: WebSocket, token: string, peer: string): void {
    sockets.add(ws);
    /** Every call and stream is authenticated again with the socket's token: a revoked one stops working at once. */
    const context = async (): Promise<CallContext> => ({ principal: await deps.access.principalOf(token), peer });
    const streams = new Map<number, GatewayStream>();
    const sink = {
      send: (frame: Uint8Array) => {
        if (ws.readyState === ws.OPEN) ws.send(frame);
      },
    };
    let alive = true;
    const ping = setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, PING_MS);
    ws.on('pong', () => {
      alive = true;
      // The socket is alive, so every stream on it is: that is the client heartbeat.
      for (const s of streams.values()) s.receive({ msg: { $case: 'heartbeat', value: { timestampMs: Date.now() } } });
    });

    ws.on('message', (data, isBinary) => {
      let frame: GatewayClientFrame;
      try {
        if (!isBinary) throw new Error('text frame');
        frame = GatewayClientFrame.decode(new Uint8Array(data as Buffer));
      } catch {
        ws.close(1003, 'frames must be binary GatewayClientFrame messages');
        return;
      }
      const f = frame.frame;
      if (!f) return;
      if (f.$case === 'call') return void call(f.value);
      if (f.$case === 'close') return streams.get(f.value.streamId)?.cancel();
      const { streamId, message } = f.value;
      if (!message) return;
      let s = streams.get(streamId);
      if (!s) {
        const stream = new GatewayStream(streamId, sink, (x) => streams.get(x.streamId) === x && streams.delete(x.streamId));
        s = stream;
        streams.set(streamId, stream);
        context().then(
          (ctx) => {
            if (!stream.closed) stream.bind(deps.calls.attach(ctx, stream));
          },
          (e) => stream.fail(asApiError(e)),
        );
      }
      s.receive(message);
    });
    ws.on('close', () => {
      clearInterval(ping);
      sockets.delete(ws);
      for (const s of [...streams.values()]) s.cancel();
    });
    ws.on('error', () => ws.terminate());

    async function call(c: GatewayCall): Promise<void> {
      const r = c.request;
      const reply = (result: GatewayReply['result']) => sink.send(replyFrame({ callId: c.callId, result }));
      try {
        if (!r) throw new ApiError('INVALID_ARGUMENT', 'empty call');
        const res = await unaryFor(deps, r)(await context(), r.value);
        reply({ $case: r.$case, value: res } as GatewayReply['result']);
      } catch (e) {
        const err = asApiError(e);
        reply({ $case: 'error', value: { code: err.code, message: err.message, ref: '', reason: err.reason } });
      }
    }
  }

  return {
    upgrade,
    close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
    },
  };
}

