/**
 * A TCP proxy that can hold back what the server sends: the client sees the server's bytes
 * late, in order, as a client on a stalled event loop (or behind a slow network) would. Used
 * instead of busy-waiting the test's own event loop, which would stall every timer and
 * socket of the process under test at once.
 */
import net from 'node:net';

/** A running {@link startHoldingProxy}. */
export interface HoldingProxy {
  /** Port on 127.0.0.1 to connect to instead of the server's. */
  port: number;
  /** Holds back server → client bytes for `ms` from now (extends a hold in progress). */
  hold(ms: number): void;
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/** Starts a proxy on 127.0.0.1 in front of `127.0.0.1:targetPort`. */
export async function startHoldingProxy(targetPort: number): Promise<HoldingProxy> {
  let heldUntil = 0;
  const flushers = new Set<() => void>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    const queue: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      const waitMs = heldUntil - Date.now();
      if (waitMs > 0) {
        timer = setTimeout(flush, waitMs);
        return;
      }
      for (const chunk of queue.splice(0)) client.write(chunk);
    };
    flushers.add(() => {
      if (timer === undefined && queue.length > 0) flush();
    });
    upstream.on('data', (chunk: Buffer) => {
      queue.push(chunk);
      if (timer === undefined) flush();
    });
    client.pipe(upstream);
    const done = () => {
      clearTimeout(timer);
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold(ms) {
      heldUntil = Math.max(heldUntil, Date.now() + ms);
      for (const wake of flushers) wake();
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
