// What clients call: unary machine/terminal calls, and the Attach stream.
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import {
  AttachMode,
  ClientMessage,
  CloseTerminalRequest,
  CloseTerminalResponse,
  ListMachinesRequest,
  ListMachinesResponse,
  ListTerminalsRequest,
  ListTerminalsResponse,
  OpenTerminalRequest,
  TerminalInfo,
  checkSize,
  isSignalName,
} from '../protocol';
import { ApiError, denied, invalid, toStatus } from './errors';
import type { Registry } from './registry';
import type { Attachment, ClientCall, TerminalRelay } from './relay';
import type { Logger } from '../lib/logger';

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

/** Runs a unary handler and turns what it throws into a gRPC status. */
function unary<Req, Res>(fn: (req: Req) => Res | Promise<Res>): Unary<Req, Res> {
  return (call, cb) => {
    Promise.resolve()
      .then(() => fn(call.request))
      .then((res) => cb(null, res))
      .catch((e) => cb(toStatus(e)));
  };
}

export function clientServiceHandlers(registry: Registry, logger: Logger, clientTimeoutS: number) {
  const attachments = new Set<Attachment>();
  // Clients send a heartbeat every 30 s; a stream that goes quiet for the
  // client timeout is closed. The session is untouched.
  const sweep = setInterval(() => {
    const cutoff = Date.now() - clientTimeoutS * 1000;
    for (const a of attachments) {
      if (a.lastHeardMs < cutoff) {
        logger.info({ attachment: a.id, terminal: a.relay.id }, 'client heartbeat lost: closing its stream');
        a.relay.detach(a);
        attachments.delete(a);
        a.call.emit('error', new ApiError('DEADLINE_EXCEEDED', `no client heartbeat for ${clientTimeoutS} s`).toStatus());
      }
    }
  }, Math.min(5000, (clientTimeoutS * 1000) / 4));
  sweep.unref();

  const handlers = {
    listMachines: unary<ListMachinesRequest, ListMachinesResponse>(() => ({ machines: registry.listMachines() })),

    openTerminal: unary<OpenTerminalRequest, TerminalInfo>(async (req) => {
      const relay = await registry.machine(req.machine).openTerminal(req.spec!);
      return relay.info();
    }),

    listTerminals: unary<ListTerminalsRequest, ListTerminalsResponse>((req) => ({
      terminals: [...registry.machine(req.machine).terminals.values()].map((t) => t.info()),
    })),

    closeTerminal: unary<CloseTerminalRequest, CloseTerminalResponse>((req) => {
      registry.machine(req.machine).closeTerminal(req.terminalId);
      return {};
    }),

    attach(call: ClientCall): void {
      let attachment: Attachment | undefined;
      let starting = false;
      const fail = (e: unknown) => {
        if (attachment) attachment.relay.detach(attachment);
        call.emit('error', toStatus(e));
      };
      call.on('data', (m: ClientMessage) => {
        if (!attachment) {
          if (starting) return fail(new ApiError('FAILED_PRECONDITION', 'wait for `attached` before sending'));
          if (m.msg?.$case !== 'attach') return fail(invalid('the first message on an attach stream must be attach'));
          starting = true;
          start(m.msg.value)
            .then((a) => {
              attachment = a;
              attachments.add(a);
            })
            .catch(fail);
          return;
        }
        try {
          onMessage(attachment, m);
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError('INVALID_ARGUMENT', String(e));
          const v = m.msg?.value as { ref?: string } | undefined;
          const ref = v?.ref ?? '';
          attachment.send({ msg: { $case: 'error', value: { code: err.code, message: err.message, ref } } });
        }
      });
      const gone = () => {
        if (!attachment) return;
        attachment.relay.detach(attachment);
        attachments.delete(attachment);
      };
      call.on('end', () => {
        gone();
        call.end();
      });
      call.on('cancelled', gone);
      call.on('error', gone);

      async function start(req: NonNullable<Extract<ClientMessage['msg'], { $case: 'attach' }>>['value']) {
        const mode = req.mode;
        if (mode !== AttachMode.OPERATOR && mode !== AttachMode.OBSERVER) {
          throw invalid('attach mode must be OPERATOR or OBSERVER');
        }
        let relay: TerminalRelay;
        let fromSeq = req.fromSeq;
        if (req.open) {
          if (mode !== AttachMode.OPERATOR) throw denied('an OBSERVER cannot open terminals');
          relay = await registry.machine(req.open.machine || req.machine).openTerminal(req.open.spec!);
          fromSeq = 0;
        } else {
          relay = registry.machine(req.machine).terminal(req.terminalId);
        }
        if (call.cancelled || call.destroyed) throw new ApiError('UNAVAILABLE', 'client went away');
        return relay.attach(call, mode, fromSeq, logger);
      }
    },
  };

  function onMessage(a: Attachment, m: ClientMessage): void {
    a.lastHeardMs = Date.now();
    const msg = m.msg;
    if (!msg) throw invalid('empty message');
    const relay = a.relay;
    switch (msg.$case) {
      case 'input': {
        const commandId = relay.input(a, msg.value.data, msg.value.eof);
        a.send({ msg: { $case: 'accepted', value: { commandId, ref: msg.value.ref } } });
        return;
      }
      case 'resize': {
        if (a.mode !== AttachMode.OPERATOR) throw denied('this attachment is an OBSERVER: resize is refused');
        const err = checkSize(msg.value.cols, msg.value.rows);
        if (err) throw invalid(err);
        relay.cols = msg.value.cols;
        relay.rows = msg.value.rows;
        const { cols, rows, ref } = msg.value;
        relay.host.sendToAgent({ msg: { $case: 'resize', value: { terminalId: relay.id, cols, rows } } });
        a.send({ msg: { $case: 'accepted', value: { commandId: '', ref } } });
        return;
      }
      case 'signal': {
        if (a.mode !== AttachMode.OPERATOR) throw denied('this attachment is an OBSERVER: signals are refused');
        if (!isSignalName(msg.value.signal)) throw invalid(`unknown signal ${JSON.stringify(msg.value.signal)}`);
        relay.host.sendToAgent({ msg: { $case: 'signal', value: { terminalId: relay.id, signal: msg.value.signal } } });
        a.send({ msg: { $case: 'accepted', value: { commandId: '', ref: msg.value.ref } } });
        return;
      }
      case 'heartbeat':
        return;
      case 'ack':
        return; // gRPC clients pace by HTTP/2 flow control; the browser gateway uses acks.
      case 'attach':
        throw new ApiError('FAILED_PRECONDITION', 'already attached; open another stream to attach elsewhere');
    }
  }

  return { handlers, close: () => clearInterval(sweep) };
}
