// Encoding of the gateway's server frames. Output is usually already encoded
// once for every client of a terminal (relay.ts); an embedded message field
// is on the wire exactly a length-prefixed bytes field, so those bytes are
// wrapped here without decoding them again. test/gateway.test.ts checks this
// against the generated codec.
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Encoded, GatewayServerFrame, ServerMessage, StreamError } from '../../../protocol';

const LEN = 2;
const VARINT = 0;
// GatewayServerFrame.stream = 2; GatewayStreamOut.stream_id = 1, .message = 2.
const FRAME_STREAM = (2 << 3) | LEN;
const OUT_STREAM_ID = (1 << 3) | VARINT;
const OUT_MESSAGE = (2 << 3) | LEN;

export function streamOutFrame(streamId: number, msg: ServerMessage | Encoded): Uint8Array {
  const bytes = msg instanceof Encoded ? msg.bytes : ServerMessage.encode(msg).finish();
  const w = new BinaryWriter();
  w.uint32(FRAME_STREAM).fork();
  w.uint32(OUT_STREAM_ID).uint32(streamId);
  w.uint32(OUT_MESSAGE).bytes(bytes);
  w.join();
  return w.finish();
}

export const streamEndFrame = (streamId: number, error?: StreamError): Uint8Array =>
  GatewayServerFrame.encode({ frame: { $case: 'end', value: { streamId, error } } }).finish();

export const replyFrame = (reply: Extract<GatewayServerFrame['frame'], { $case: 'reply' }>['value']): Uint8Array =>
  GatewayServerFrame.encode({ frame: { $case: 'reply', value: reply } }).finish();
