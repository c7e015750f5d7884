// Turns ts-proto's generic service definitions (generated from proto/) into
// @grpc/grpc-js service definitions, so the method table is never written
// twice. Two things the stock serializers do not: encoding without a copy
// (Buffer.from(Uint8Array) copies), and passing through bytes that were
// encoded once for many receivers (one output chunk fanned out to N clients).
//
// The same definitions give the clients their types (`typedClient`): each
// method's name, request and response messages and streaming kind come from
// the generated `as const` table, so a wrong method name or request fails to
// compile (test/typedCalls.test.ts), and the client built at run time uses
// the serializers above.
import {
  makeGenericClientConstructor,
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientDuplexStream,
  type ClientOptions,
  type ClientReadableStream,
  type ClientUnaryCall,
  type ClientWritableStream,
  type Metadata,
  type ServiceError,
  type StatusObject,
  type MethodDefinition,
  type ServiceDefinition,
  type requestCallback,
} from '@grpc/grpc-js';
import { BinaryReader, BinaryWriter } from '@bufbuild/protobuf/wire';

interface MessageCodec<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
}

/** One method of a ts-proto generic service definition (outputServices=generic-definitions). */
export interface GenericMethod {
  readonly name: string;
  readonly requestType: MessageCodec<unknown>;
  readonly requestStream: boolean;
  readonly responseType: MessageCodec<unknown>;
  readonly responseStream: boolean;
}

/** A ts-proto generic service definition, e.g. `ClientServiceDefinition`. */
export interface GenericService {
  readonly name: string;
  readonly fullName: string;
  readonly methods: { readonly [method: string]: GenericMethod };
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

// ---- typed clients

type MessageOf<C> = C extends MessageCodec<infer T> ? T : never;
type MethodsOf<S extends GenericService> = S['methods'];

/** The request message of method K of service S. */
export type RequestOf<S extends GenericService, K extends keyof MethodsOf<S>> = MessageOf<MethodsOf<S>[K]['requestType']>;
/** The response message of method K of service S. */
export type ResponseOf<S extends GenericService, K extends keyof MethodsOf<S>> = MessageOf<MethodsOf<S>[K]['responseType']>;

type MethodsWhere<S extends GenericService, Kind> = {
  [K in keyof MethodsOf<S>]: MethodsOf<S>[K] extends Kind ? K : never;
}[keyof MethodsOf<S>] & string;

export type UnaryMethods<S extends GenericService> = MethodsWhere<S, { requestStream: false; responseStream: false }>;
export type ServerStreamMethods<S extends GenericService> = MethodsWhere<S, { requestStream: false; responseStream: true }>;
export type ClientStreamMethods<S extends GenericService> = MethodsWhere<S, { requestStream: true; responseStream: false }>;
export type DuplexMethods<S extends GenericService> = MethodsWhere<S, { requestStream: true; responseStream: true }>;

/**
 * What a stream's writer accepts: the message, or the same message encoded
 * once (`Encoded`, e.g. protocol/fastEncode.ts's output and file chunks),
 * which the serializer writes as is.
 */
export type Outgoing<T> = T | Encoded;

/**
 * The events of a call's response stream, typed. grpc-js's own stream types
 * also take any listener for any event (Node's Readable overloads), so a
 * 'data' listener's message is `any` there and a wrongly typed one compiles;
 * the call types below replace `on` and `once` with these overloads only.
 */
export interface ResponseEvents<Res> {
  on(event: 'data', listener: (message: Res) => void): this;
  on(event: 'error', listener: (error: ServiceError) => void): this;
  on(event: 'end' | 'close' | 'drain' | 'finish', listener: () => void): this;
  on(event: 'status', listener: (status: StatusObject) => void): this;
  on(event: 'metadata', listener: (metadata: Metadata) => void): this;
  once(event: 'data', listener: (message: Res) => void): this;
  once(event: 'error', listener: (error: ServiceError) => void): this;
  once(event: 'end' | 'close' | 'drain' | 'finish', listener: () => void): this;
  once(event: 'status', listener: (status: StatusObject) => void): this;
  once(event: 'metadata', listener: (metadata: Metadata) => void): this;
}
/** A server-streaming call: Res messages in. */
export type ServerStreamCall<Res> = ResponseEvents<Res> & Omit<ClientReadableStream<Res>, 'on' | 'once'>;
/** A bidirectional call: Req messages (or `Encoded` ones) out, Res messages in. */
export type DuplexCall<Req, Res> = ResponseEvents<Res> & Omit<ClientDuplexStream<Outgoing<Req>, Res>, 'on' | 'once'>;

/** The unary calls of service S, by method name (the grpc-js calling convention: request, metadata, callback). */
export type UnaryCalls<S extends GenericService> = {
  readonly [K in UnaryMethods<S>]: (
    request: RequestOf<S, K>,
    metadata: Metadata,
    callback: requestCallback<ResponseOf<S, K>>,
  ) => ClientUnaryCall;
};
export type ServerStreamCalls<S extends GenericService> = {
  readonly [K in ServerStreamMethods<S>]: (
    request: RequestOf<S, K>,
    metadata: Metadata,
    options?: CallOptions,
  ) => ServerStreamCall<ResponseOf<S, K>>;
};
export type ClientStreamCalls<S extends GenericService> = {
  readonly [K in ClientStreamMethods<S>]: (
    metadata: Metadata,
    callback: requestCallback<ResponseOf<S, K>>,
  ) => ClientWritableStream<Outgoing<RequestOf<S, K>>>;
};
export type DuplexCalls<S extends GenericService> = {
  readonly [K in DuplexMethods<S>]: (
    metadata: Metadata,
    options?: CallOptions,
  ) => DuplexCall<RequestOf<S, K>, ResponseOf<S, K>>;
};

/** A grpc-js client of service S with one typed method per RPC. */
export type TypedClient<S extends GenericService> = Client &
  UnaryCalls<S> &
  ServerStreamCalls<S> &
  ClientStreamCalls<S> &
  DuplexCalls<S>;

export interface TypedClientConstructor<S extends GenericService> {
  new (address: string, credentials: ChannelCredentials, options?: Partial<ClientOptions>): TypedClient<S>;
}

/**
 * The client class for a generated service definition, over the service
 * table of `toGrpcService` (so with its serializers: no copy on encode, and
 * `Encoded` written as is). grpc-js types a generic client's methods as
 * `Function`; this is the one place that states what they are, and it
 * states it from the same definition the methods were made from.
 */
export function typedClient<S extends GenericService>(service: S): TypedClientConstructor<S> {
  return makeGenericClientConstructor(toGrpcService(service), service.name) as unknown as TypedClientConstructor<S>;
}
