// The one home of what every side of the wire shares: generated messages,
// the gRPC service tables, the output log and the limits both ends enforce.
export * from './generated/cmdop/v1/cmdop';
export * from './grpc';
export * from './fastEncode';
export * from './outputLog';
export * from './limits';
