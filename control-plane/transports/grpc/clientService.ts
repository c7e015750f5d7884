// What clients call: unary machine/terminal calls, and the Attach stream.
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
} from '../../../protocol';
import { ApiError, denied, invalid, toStatus } from '../../core/errors';
import { authedUnary } from './unary';
import { fileServiceHandlers } from './fileService';
import type { Access, Principal } from '../../core/access';
import type { Registry } from '../../core/registry';
import type { Attachment, ClientCall, TerminalRelay } from '../../core/relay';
import type { Logger } from '../../../lib/logger';

export function clientServiceHandlers(registry: Registry, access: Access, logger: Logger, clientTimeoutS: number) {
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
    ...fileServiceHandlers(registry, access),

    listMachines: authedUnary<ListMachinesRequest, ListMachinesResponse>(access, 'list', (_req, p) => {
      const visible = access.visibleMachines(p);
      const machines = registry.listMachines();
      return { machines: visible ? machines.filter((m) => visible.has(m.name)) : machines };
    }),

    openTerminal: authedUnary<OpenTerminalRequest, TerminalInfo>(access, 'open', async (req, p, peer) => {
      access.require(p, req.machine, AttachMode.OPERATOR);
      const relay = await registry.machine(req.machine).openTerminal(req.spec!);
      access.audit(p, { action: 'open', machine: req.machine, terminalId: relay.id, peer });
      return relay.info();
    }),

    listTerminals: authedUnary<ListTerminalsRequest, ListTerminalsResponse>(access, 'list', (req, p) => {
      access.require(p, req.machine, AttachMode.OBSERVER);
      return { terminals: [...registry.machine(req.machine).terminals.values()].map((t) => t.info()) };
    }),

    closeTerminal: authedUnary<CloseTerminalRequest, CloseTerminalResponse>(access, 'close', (req, p, peer) => {
      access.require(p, req.machine, AttachMode.OPERATOR);
      registry.machine(req.machine).closeTerminal(req.terminalId);
      access.audit(p, { action: 'close', machine: req.machine, terminalId: req.terminalId, peer });
      return {};
    }),

    attach(call: ClientCall): void {
      let attachment: Attachment | undefined;
      let starting = false;
      let principal: Principal | undefined;
      let untrack: (() => void) | undefined;
      let machine = '';
      let failed = false;
      const peer = call.getPeer();
      const fail = (e: unknown) => {
        if (failed) return;
        failed = true;
        if (attachment) attachment.relay.detach(attachment);
        if (e instanceof ApiError && (e.code === 'UNAUTHENTICATED' || e.code === 'PERMISSION_DENIED')) {
          access.audit(principal, { action: 'attach', ok: false, detail: e.message, peer, machine });
        }
        if (!call.cancelled && !call.destroyed) call.emit('error', toStatus(e));
      };
      const onData = (m: ClientMessage) => {
        if (failed) return;
        if (!attachment) {
          if (starting) return fail(new ApiError('FAILED_PRECONDITION', 'wait for `attached` before sending'));
          if (m.msg?.$case !== 'attach') return fail(invalid('the first message on an attach stream must be attach'));
          starting = true;
          start(m.msg.value)
            .then((a) => {
              attachment = a;
              attachments.add(a);
              access.audit(principal, { action: 'attach', machine, terminalId: a.relay.id, mode: a.mode, peer });
              // Revoking the token, share or grant behind this stream ends it at once.
              untrack = access.track(principal!, machine, (reason) => {
                gone();
                call.emit('error', new ApiError('PERMISSION_DENIED', reason).toStatus());
              });
            })
            .catch(fail);
          return;
        }
        try {
          const commandId = onMessage(attachment, m);
          if (commandId) {
            access.audit(principal, { action: 'input', machine, terminalId: attachment.relay.id, mode: attachment.mode, commandId, peer });
          }
        } catch (e) {
          const err = e instanceof ApiError ? e : new ApiError('INVALID_ARGUMENT', String(e));
          if (err.code === 'PERMISSION_DENIED') {
            const action = m.msg?.$case ?? 'message';
            access.audit(principal, { action, ok: false, detail: err.message, machine, terminalId: attachment.relay.id, mode: attachment.mode, peer });
          }
          const v = m.msg?.value as { ref?: string } | undefined;
          const ref = v?.ref ?? '';
          attachment.send({ msg: { $case: 'error', value: { code: err.code, message: err.message, ref } } });
        }
      };
      const gone = () => {
        untrack?.();
        untrack = undefined;
        if (!attachment || !attachments.has(attachment)) return;
        attachment.relay.detach(attachment);
        attachments.delete(attachment);
        access.audit(principal, { action: 'detach', machine, terminalId: attachment.relay.id, mode: attachment.mode, peer });
      };
      call.on('end', () => {
        gone();
        call.end();
      });
      call.on('cancelled', gone);
      call.on('error', gone);
      // The token is checked as the stream opens, before any message is read
      // (nothing is read until the 'data' listener exists): a bad one ends
      // the stream with UNAUTHENTICATED at once, whatever the client sends.
      access.authenticate(call.metadata).then(
        (p) => {
          principal = p;
          if (!failed) call.on('data', onData);
        },
        fail,
      );

      async function start(req: NonNullable<Extract<ClientMessage['msg'], { $case: 'attach' }>>['value']) {
        const p = principal!;
        const mode = req.mode;
        if (mode !== AttachMode.OPERATOR && mode !== AttachMode.OBSERVER) {
          throw invalid('attach mode must be OPERATOR or OBSERVER');
        }
        let relay: TerminalRelay;
        let fromSeq = req.fromSeq;
        if (req.open) {
          machine = req.open.machine || req.machine;
          if (mode !== AttachMode.OPERATOR) throw denied('an OBSERVER cannot open terminals');
          access.require(p, machine, AttachMode.OPERATOR);
          relay = await registry.machine(machine).openTerminal(req.open.spec!);
          access.audit(p, { action: 'open', machine, terminalId: relay.id, peer });
          fromSeq = 0;
        } else {
          machine = req.machine;
          access.require(p, machine, mode, req.terminalId);
          relay = registry.machine(machine).terminal(req.terminalId);
        }
        if (call.cancelled || call.destroyed) throw new ApiError('UNAVAILABLE', 'client went away');
        return relay.attach(call, mode, fromSeq, logger, req.acks);
      }
    },
  };

  /** Handles one message on an attached stream; returns the command_id of input it forwarded. */
  function onMessage(a: Attachment, m: ClientMessage): string | undefined {
    a.lastHeardMs = Date.now();
    const msg = m.msg;
    if (!msg) throw invalid('empty message');
    const relay = a.relay;
    switch (msg.$case) {
      case 'input': {
        const commandId = relay.input(a, msg.value.data, msg.value.eof);
        a.send({ msg: { $case: 'accepted', value: { commandId, ref: msg.value.ref } } });
        return commandId;
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
        // What the client has received (AttachRequest.acks): it paces the terminal, and confirms the exit.
        relay.onClientAck(a, msg.value.seq, msg.value.exit);
        return;
      case 'attach':
        throw new ApiError('FAILED_PRECONDITION', 'already attached; open another stream to attach elsewhere');
    }
  }

  return { handlers, close: () => clearInterval(sweep) };
}
