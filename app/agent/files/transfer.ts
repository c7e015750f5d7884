// What a transfer (download or upload) needs from the FileService that owns it.
import type { AgentMessage, Encoded, FileReply } from '../../../protocol';
import type { Logger } from '../../../lib/logger';
import type { FileError } from './errors';

export type ReplyFields = Partial<Omit<FileReply, 'requestId'>>;

export interface TransferContext {
  /** Sends on the agent's stream; false when there is none (the transfer then stops). */
  send(msg: AgentMessage | Encoded, bulk?: boolean): boolean;
  /** A FileReply for the request (fields not given are empty). */
  reply(requestId: number, r: ReplyFields): void;
  /** Ends the request with an error reply. */
  replyError(requestId: number, e: FileError): void;
  /** The transfer is over (done, failed or stopped): its request id is free again. */
  ended(requestId: number): void;
  logger: Logger;
}
