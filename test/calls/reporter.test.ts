import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CallEvent } from '../../src/calls/events.ts';
import type { Reporter } from '../../src/calls/reporter.ts';
import { runRecording } from '../../src/calls/runner.ts';
import { loadFixture } from '../support/conformance.ts';

const FIXTURE = 'simple/ab_success_a_hangup';

describe('reporter dispatch', () => {
  test('a throwing onHangup does not suppress onCallEvent; the error goes to the handler', async () => {
    const generic: string[] = [];
    const errors: Array<{ message: string; event: string }> = [];
    const reporter: Reporter = {
      onHangup() {
        throw new Error('onHangup broke');
      },
      onCallEvent: (event) => void generic.push(event.event),
    };
    await runRecording(loadFixture(FIXTURE), reporter, {
      onReporterError: (error, event) =>
        errors.push({ message: (error as Error).message, event: String(event.event) }),
    });
    assert.ok(generic.includes('hangup'), `onCallEvent saw: ${generic.join(', ')}`);
    assert.deepEqual(errors, [{ message: 'onHangup broke', event: 'hangup' }]);
  });

  test('a throwing onCallEvent does not suppress the specific method, and both errors are reported', async () => {
    const specific: CallEvent['event'][] = [];
    const errors: string[] = [];
    const reporter: Reporter = {
      onUp: (event) => void specific.push(event.event),
      onHangup: (event) => void specific.push(event.event),
      onCallEvent() {
        throw new Error('generic broke');
      },
    };
    const summary = await runRecording(loadFixture(FIXTURE), reporter, {
      onReporterError: (error) => errors.push((error as Error).message),
    });
    assert.deepEqual(specific, ['up', 'hangup']);
    assert.equal(errors.length, summary.callEvents);
  });

  test('a rejecting specific method and a rejecting onCallEvent: both reported', async () => {
    const errors: string[] = [];
    let resolveDone: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      resolveDone = resolve;
    });
    const reporter: Reporter = {
      onHangup: async () => {
        throw new Error('specific rejected');
      },
      onCallEvent: async (event) => {
        if (event.event === 'hangup') throw new Error('generic rejected');
      },
    };
    await runRecording(loadFixture(FIXTURE), reporter, {
      onReporterError: (error) => {
        errors.push((error as Error).message);
        if (errors.length === 2) resolveDone();
      },
    });
    await done;
    assert.deepEqual(errors.sort(), ['generic rejected', 'specific rejected']);
  });
});
