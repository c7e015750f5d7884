// The browser gateway: WebSocket upgrades on /ws of the web port. The token
// comes in the Sec-WebSocket-Protocol header (browsers cannot set
// Authorization on a WebSocket) and is verified before the upgrade is
// accepted. Because the browser never attaches that header by itself, a
// page on another origin cannot ride a user's session (no cross-site
// WebSocket hijacking), so no Origin allow-list is needed.
//
// Calls and attach streams are handed to ClientService's own handlers, so
// the rules (auth, roles, audit, revocation) are the same code as for gRPC.
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { Metadata } from '@grpc/grpc-js';
import { WebSocketServer, type WebSocket } from 'ws';
import { GATEWAY_PATH, GATEWAY_PROTOCOL, GatewayCall, GatewayClientFrame, GatewayReply, MAX_CLIENT_MESSAGE } from '../../../protocol';
import type { Access } from '../../core/access';
import { ApiError } from '../../core/errors';
import type { Logger } from '../../../lib/logger';
import { GatewayStream } from './stream';
import { replyFrame } from './frames';
import { status } from '@grpc/grpc-js';

const BEARER = 'bearer.';
/** A dead page (laptop lid closed) is noticed within two of these. */
const PING_MS = 20_000;

type Handler = (call: any, cb?: (err: unknown, res?: unknown) => void) => void;

export interface GatewayDeps {
  access: Access;
  /** ClientService's handlers (clientService.ts). */
  handlers: Record<string, Handler>;
  whoAmI: Handler;
  logger: Logger;
}

const UNARY: Record<NonNullable<GatewayCall['request']>['$case'], string> = {
  listMachines: 'listMachines',
  openTerminal: 'openTerminal',
  listTerminals: 'listTerminals',
  closeTerminal: 'closeTerminal',
  whoAmI: 'whoAmI',
  listFiles: 'listFiles',
  statFile: 'statFile',
  makeDirectory: 'makeDirectory',
  removeFile: 'removeFile',
  renameFile: 'renameFile',
};

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
    const md = new Metadata();
    md.set('authorization', `Bearer ${token}`);
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
      if (f.$case === 'call') return call(f.value);
      if (f.$case === 'close') return streams.get(f.value.streamId)?.cancel();
      const { streamId, message } = f.value;
      if (!message) return;
      let s = streams.get(streamId);
      if (!s) {
        s = new GatewayStream(streamId, md, peer, sink, (x) => streams.get(x.streamId) === x && streams.delete(x.streamId));
        streams.set(streamId, s);
        deps.handlers.attach(s);
      }
      s.receive(message);
    });
    ws.on('close', () => {
      clearInterval(ping);
      sockets.delete(ws);
      for (const s of [...streams.values()]) s.cancel();
    });
    ws.on('error', () => ws.terminate());

    function call(c: GatewayCall): void {
      const r = c.request;
      const reply = (result: GatewayReply['result']) => sink.send(replyFrame({ callId: c.callId, result }));
      if (!r) return reply({ $case: 'error', value: { code: 'INVALID_ARGUMENT', message: 'empty call', ref: '' } });
      const handler = r.$case === 'whoAmI' ? deps.whoAmI : deps.handlers[UNARY[r.$case]];
      handler({ request: r.value, metadata: md, getPeer: () => peer }, (err, res) => {
        if (err) {
          const st = err as { code: number; details: string };
          return reply({ $case: 'error', value: { code: status[st.code] ?? 'INTERNAL', message: st.details ?? String(err), ref: '' } });
        }
        reply({ $case: r.$case, value: res } as GatewayReply['result']);
      });
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

