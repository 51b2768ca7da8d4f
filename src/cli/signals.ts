/**
 * Signals of the long-running commands (`serve`, `watch`, `record`, `listen`, ...).
 *
 * One set of listeners for the whole life of the command, installed before anything starts,
 * so that no signal ever finds the process without a listener (Node's default for SIGINT,
 * SIGTERM and SIGHUP is to die at once: exit 130 / 143 / 129, nothing flushed):
 *
 * - the first SIGINT or SIGTERM asks the command to stop (gracefully);
 * - a repeated SIGTERM is ignored: supervisors send it more than once (systemd with
 *   `KillMode=control-group` signals both the `switchboard` launcher, which forwards it, and
 *   the re-executed child), and they escalate to SIGKILL by themselves;
 * - a SIGINT within {@link DUPLICATE_WINDOW_MS} of the first signal is the same Ctrl-C
 *   delivered twice (the terminal signals the whole process group, and npm forwards it to its
 *   script again) and is ignored; a later one is a person pressing Ctrl-C again: `force`;
 * - SIGHUP calls `reload` (when given, and not stopping); otherwise it is ignored.
 *
 * @module
 */

/** How long after the first stop signal a SIGINT counts as a duplicate of it, ms. */
export const DUPLICATE_WINDOW_MS = 1000;

/** What {@link handleSignals} calls. */
export interface SignalHandlers {
  /** The first SIGINT or SIGTERM. */
  stop(signal: NodeJS.Signals): void;
  /** A deliberate second SIGINT while stopping (default: exit 1 at once). */
  force?(signal: NodeJS.Signals): void;
  /** SIGHUP (default: ignored). */
  reload?(): void;
}

/**
 * Installs the listeners described in the module comment.
 * @returns a function removing them.
 */
export function handleSignals(handlers: SignalHandlers): () => void {
  let firstAt: number | undefined;
  const onStop = (signal: NodeJS.Signals): void => {
    if (firstAt === undefined) {
      firstAt = Date.now();
      handlers.stop(signal);
      return;
    }
    if (signal !== 'SIGINT' || Date.now() - firstAt < DUPLICATE_WINDOW_MS) return;
    if (handlers.force) handlers.force(signal);
    else process.exit(1);
  };
  const onHangup = (): void => {
    if (firstAt === undefined) handlers.reload?.();
  };
  process.on('SIGINT', onStop);
  process.on('SIGTERM', onStop);
  process.on('SIGHUP', onHangup);
  return () => {
    process.off('SIGINT', onStop);
    process.off('SIGTERM', onStop);
    process.off('SIGHUP', onHangup);
  };
}

/**
 * Resolves at the first SIGINT or SIGTERM, with the listeners of {@link handleSignals} left
 * in place (duplicates ignored, a deliberate second Ctrl-C exits 1, SIGHUP ignored), so that
 * the command's clean-up (a last flush, a log-off) is not cut short by a repeated signal.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    handleSignals({ stop: resolve });
  });
}
