// Turns ts-proto's generic service definitions (generated from proto/) into
// @grpc/grpc-js service definitions, so the method table is never written
// twice. Two things the stock serializers do not: encoding without a copy
// (Buffer.from(Uint8Array) copies), and passing through bytes that were
// encoded once for many receivers (one output chunk fanned out to N clients).
import type { ServiceDefinition, MethodDefinition } from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';

interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

interface GenericMethod {
  name: string;
  requestType: MessageCodec<any>;
  requestStream: boolean;
  responseType: MessageCodec<any>;
  responseStream: boolean;
}

interface GenericService {
  fullName: string;
  methods: Record<string, GenericMethod>;
}

/** A message already encoded; written as is. Build one with `preEncode`. */
export class Encoded {
  constructor(
    readonly bytes: Buffer,
    /** For a TerminalOutput: the byte range it carries (the browser gateway counts unacknowledged bytes). */
    readonly output?: { seq: number; length: number },
  ) {}
}

export function toBuffer(u8: Uint8Array): Buffer {
  return Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

export function preEncode<T>(codec: MessageCodec<T>, message: T): Encoded {
  return new Encoded(toBuffer(codec.encode(message).finish()));
}

function serializer<T>(codec: MessageCodec<T>): (value: T | Encoded) => Buffer {
  return (value) => (value instanceof Encoded ? value.bytes : toBuffer(codec.encode(value as T).finish()));
}

export function toGrpcService<S extends GenericService>(service: S): ServiceDefinition {
  const out: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [key, m] of Object.entries(service.methods)) {
    out[key] = {
      path: `/${service.fullName}/${m.name}`,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: serializer(m.requestType),
      requestDeserialize: (b: Buffer) => m.requestType.decode(b),
      responseSerialize: serializer(m.responseType),
      responseDeserialize: (b: Buffer) => m.responseType.decode(b),
    };
  }
  return out as ServiceDefinition;
}
