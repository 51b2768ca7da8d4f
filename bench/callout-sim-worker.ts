/**
 * The PBX simulator of the callout benchmark in a worker thread: a real PBX answers from its
 * own process, so the simulator gets its own event loop (and core) instead of sharing the
 * service's. Messages: the parent receives `{ url }` once listening; it sends `'originates'`
 * and receives `{ originates }` (number and variables of every Originate), or `'close'`.
 */
import { parentPort } from 'node:worker_threads';
import { startSimulator } from '../src/sim/index.ts';
import { benchSimulatorOptions } from './callout.ts';

const port = parentPort;
if (!port) throw new Error('callout-sim-worker.ts runs as a worker thread');
const sim = await startSimulator(benchSimulatorOptions());
port.on('message', async (message: unknown) => {
  if (message === 'originates') {
    port.postMessage({
      originates: sim.originates().map((o) => ({ number: o.number, variables: o.variables })),
    });
  } else if (message === 'close') {
    await sim.close();
    port.close();
  }
});
port.postMessage({ url: sim.url() });
