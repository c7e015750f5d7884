// Hand-written protobuf encoding for the one message on the hot path:
// terminal output wrapped in AgentMessage (agent -> control plane) or
// ServerMessage (control plane -> clients). The generated encoder copies the
// payload into its writer and again when finishing; this writes the header
// and copies the payload once. Field numbers come from the generated code's
// contract (proto/cmdop/v1/cmdop.proto) and test/protocol.test.ts checks
// that the generated decoder reads exactly what the generated encoder
// would have written.
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { Encoded } from './grpc';
import type { OutputStream } from './generated/cmdop/v1/cmdop';

/** Field numbers of `output` in the envelopes (AgentMessage.output = 3, ServerMessage.output = 2). */
export const OUTPUT_FIELD = { agent: 3, server: 2 } as const;

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/**
 * Encodes `{ output: TerminalOutput }` of an envelope. TerminalOutput fields:
 * terminal_id = 1, seq = 2, data = 3, command_id = 4, stream = 5; data goes
 * last so the payload is copied exactly once. `data` may be given in parts
 * (consecutive output sent as one message): they are copied once, in order.
 */
export function encodeOutputEnvelope(
  envelopeField: number,
  terminalId: string,
  seq: number,
  data: Uint8Array | readonly Uint8Array[],
  commandId: string,
  stream: OutputStream,
): Encoded {
  const parts = data instanceof Uint8Array ? [data] : data;
  let dataLen = 0;
  for (const d of parts) dataLen += d.length;
  const idLen = Buffer.byteLength(terminalId);
  const cmdLen = Buffer.byteLength(commandId);
  let inner = 0;
  if (idLen) inner += 1 + varintSize(idLen) + idLen;
  if (seq) inner += 1 + varintSize(seq);
  if (cmdLen) inner += 1 + varintSize(cmdLen) + cmdLen;
  if (stream) inner += 1 + varintSize(stream);
  if (dataLen) inner += 1 + varintSize(dataLen) + dataLen;
  const total = 1 + varintSize(inner) + inner;
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  buf[p++] = (envelopeField << 3) | 2;
  p = writeVarint(buf, p, inner);
  if (idLen) {
    buf[p++] = (1 << 3) | 2;
    p = writeVarint(buf, p, idLen);
    p += buf.write(terminalId, p);
  }
  if (seq) {
    buf[p++] = 2 << 3;
    p = writeVarint(buf, p, seq);
  }
  if (cmdLen) {
    buf[p++] = (4 << 3) | 2;
    p = writeVarint(buf, p, cmdLen);
    p += buf.write(commandId, p);
  }
  if (stream) {
    buf[p++] = 5 << 3;
    p = writeVarint(buf, p, stream);
  }
  if (dataLen) {
    buf[p++] = (3 << 3) | 2;
    p = writeVarint(buf, p, dataLen);
    for (const d of parts) {
      buf.set(d, p);
      p += d.length;
    }
  }
  return new Encoded(buf);
}

/** Field numbers of a FileChunk in the envelopes that carry one (AgentMessage, ControlMessage, DownloadMessage, UploadMessage). */
export const FILE_CHUNK_FIELD = { agent: 31, control: 31, download: 2, upload: 2 } as const;

/**
 * Encodes `{ <envelopeField>: FileChunk { request_id = 1, offset = 2, data = 3 } }`
 * with the payload copied once. The generated encoder copies a 2 MiB chunk
 * about four times (into a buffer it grows by doubling, twice more to widen
 * the two length prefixes, once more to finish) and allocates ~8 MiB for it.
 */
export function encodeFileChunkEnvelope(envelopeField: number, requestId: number, offset: number, data: Uint8Array): Encoded {
  let inner = 0;
  if (requestId) inner += 1 + varintSize(requestId);
  if (offset) inner += 1 + varintSize(offset);
  if (data.length) inner += 1 + varintSize(data.length) + data.length;
  const tag = (envelopeField << 3) | 2; // fields above 15 need a two-byte tag
  const buf = Buffer.allocUnsafe(varintSize(tag) + varintSize(inner) + inner);
  let p = writeVarint(buf, 0, tag);
  p = writeVarint(buf, p, inner);
  if (requestId) {
    buf[p++] = 1 << 3;
    p = writeVarint(buf, p, requestId);
  }
  if (offset) {
    buf[p++] = 2 << 3;
    p = writeVarint(buf, p, offset);
  }
  if (data.length) {
    buf[p++] = (3 << 3) | 2;
    p = writeVarint(buf, p, data.length);
    buf.set(data, p);
  }
  return new Encoded(buf);
}

/**
 * The byte range an encoded ServerMessage's `output` carries (seq, data
 * length), read without decoding or copying its data; undefined for any
 * other message. A replica passing on another's output keeps the bytes as
 * they came and still knows the range (the console's gateway counts
 * unacknowledged output by it).
 */
export function peekOutputRange(bytes: Uint8Array): { seq: number; length: number } | undefined {
  const r = new BinaryReader(bytes);
  if (r.pos >= r.len) return undefined;
  const [field, wire] = r.tag();
  if (field !== OUTPUT_FIELD.server || wire !== WireType.LengthDelimited) return undefined;
  const end = r.uint32() + r.pos;
  let seq = 0;
  let length = 0;
  while (r.pos < end) {
    const [f, w] = r.tag();
    if (f === 2 && w === WireType.Varint) seq = Number(r.uint64());
    else if (f === 3 && w === WireType.LengthDelimited) {
      length = r.uint32();
      r.pos += length;
    } else r.skip(w);
  }
  return { seq, length };
}
