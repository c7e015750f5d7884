import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { asErrorCode, asErrorReason } from '../protocol/errors';
import { CmdopError, fromServiceError, MachineNotFoundError, UnavailableError } from '../sdk';
import { GatewayError } from '../sdk/gateway';

function serviceError(code: status, details: string, reason?: string): ServiceError {
  const metadata = new Metadata();
  if (reason !== undefined) metadata.set('cmdop-reason', reason);
  return Object.assign(new Error(details), { code, details, metadata });
}

describe('error codes and reasons are typed on both ends (protocol/errors.ts)', () => {
  it('known codes and reasons pass through; anything else reads UNKNOWN or no reason', () => {
    assert.equal(asErrorCode('UNAVAILABLE'), 'UNAVAILABLE');
    assert.equal(asErrorCode('unavailable'), 'UNKNOWN');
    assert.equal(asErrorCode('SOMETHING_NEW'), 'UNKNOWN');
    assert.equal(asErrorReason('restarting'), 'restarting');
    assert.equal(asErrorReason('a_reason_from_a_newer_server'), '');
  });

  it('the SDK maps a gRPC status and its cmdop-reason to a typed error', () => {
    const e = fromServiceError(serviceError(status.NOT_FOUND, 'no machine called x', 'machine_not_found'), 'cp:1');
    assert.ok(e instanceof MachineNotFoundError);
    assert.equal(e.code, 'NOT_FOUND');
    assert.equal(e.reason, 'machine_not_found');
    const odd = fromServiceError(serviceError(status.UNAVAILABLE, 'later', 'not_a_reason_we_know'), 'cp:1');
    assert.ok(odd instanceof UnavailableError);
    assert.equal(odd.reason, '');
    assert.equal(new CmdopError('x', 'BOGUS').code, 'UNKNOWN');
  });

  it("the console's gateway errors carry the same types", () => {
    const e = new GatewayError('UNAVAILABLE', 'the control plane is restarting', 'restarting');
    assert.deepEqual([e.code, e.reason], ['UNAVAILABLE', 'restarting']);
    assert.deepEqual([new GatewayError('??', 'x', '??').code, new GatewayError('??', 'x', '??').reason], ['UNKNOWN', '']);
  });
});
