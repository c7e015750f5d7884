// Keeps bulk messages (file chunks) from delaying interactive ones (terminal
// output, input, acks) on one gRPC stream.
//
// Why: a gRPC stream is a Node Writable that hands one message at a time to
// HTTP/2 and queues the rest, in order. A download writes up to its whole
// window (4 MiB) of chunks at once, so a keystroke's echo written after them
// waited for all of them: 30 ms at the median and 120 ms at p99 while a file
// moved, against 3 ms idle (bench/files.ts). Here bulk messages wait in a
// queue of their own and go to the stream one at a time, each after the
// previous one has been written out; interactive messages go to the stream at
// once, so at most one chunk is ever ahead of them. Order is kept within each
// class, so a transfer's FileDone must go as bulk after its chunks.
//
// One sender per stream: a new stream gets a new sender, and what was queued
// for the old one is dropped with it (transfers are resumed, not replayed).

export interface BulkStream<M> {
  write(msg: M, cb?: (err?: Error | null) => void): unknown;
}

export class PrioritySender<M> {
  private readonly queue: M[] = [];
  /** A bulk message is with the stream and its write has not completed. */
  private writing = false;
  private closed = false;

  constructor(private readonly stream: BulkStream<M>) {}

  /** Written now, ahead of queued bulk messages. */
  send(msg: M): void {
    if (!this.closed) this.stream.write(msg);
  }

  /** Written after earlier bulk messages have been written out, one at a time. */
  sendBulk(msg: M): void {
    if (this.closed) return;
    this.queue.push(msg);
    this.pump();
  }

  /** Bulk messages not yet handed to the stream. */
  get queued(): number {
    return this.queue.length;
  }

  /** The stream is gone: queued bulk messages are dropped, and nothing more is written. */
  close(): void {
    this.closed = true;
    this.queue.length = 0;
  }

  private pump(): void {
    if (this.writing || this.closed) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    this.writing = true;
    this.stream.write(next, () => {
      this.writing = false;
      this.pump();
    });
  }
}

