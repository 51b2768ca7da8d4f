/**
 * Why this file is long: {@link SimCall} plays one originated call as Asterisk 22 does, event
 * by event in the wire logs' order (ringing, answer or failure, DTMF, UserEvent, hangup, with
 * the noise events); one class reads top to bottom like the recordings it copies, which is
 * how it is checked against them. Parsing the action is in originate-request.ts.
 *
 * The simulated side of an AMI `Originate`: the channels, ringing, answer (or busy, no answer,
 * congestion, failure), DTMF keys, the dialplan's `UserEvent` and the hangup, as the events
 * a real Asterisk 22 sends, in its order, with its noise (`Newexten`, `VarSet`,
 * `NewCallerid`, `NewConnectedLine`, `LocalBridge`, `DeviceStateChange`).
 *
 * Followed wire logs (test/fixtures/asterisk22/recordings): `dtmf_local.raw.txt` (Local
 * channel into a context: Answer, Playback, Read, UserEvent, Hangup), `dtmf_originate_app.raw.txt`
 * (`Application: Read`), `call_ab.raw.txt` (ringing of a Local channel, `Hangup` action).
 * Busy / no answer / congestion and non-Local technologies are not in the logs: they use the
 * same event shapes with Asterisk's causes and reasons (see docs/simulator.md).
 *
 * @module
 */
import type { AmiEvent } from '../ami/message.ts';
import { channelStateDesc, type LiveChannel } from './channels.ts';
import type { OriginateRequest } from './originate-request.ts';
import type { SimDialplan, SimScript, SimUserEvent } from './script.ts';

export { type OriginateRequest, parseCallerId, parseOriginate } from './originate-request.ts';

/** What the simulator provides to a call. */
export interface SimCallHost {
  /** Sends one event to the clients (and updates the channel table). */
  emit(event: AmiEvent): void;
  /** A fresh Uniqueid (`<epoch>.<n>`). */
  nextUniqueid(): string;
  /** A fresh channel sequence number (8 lowercase hex digits, shared by every technology). */
  nextSequence(): string;
  /** Duration of one DTMF key, in ms (the gap between keys is the same). */
  dtmfDurationMs: number;
  /** `UserEvent` raised after an `Application: Read` originate completes; null = none (real Asterisk). */
  applicationUserEvent: SimUserEvent | null;
}

/** How an Originate ended, for {@link SimCall.result}. */
export interface SimCallResult {
  /** `OriginateResponse` `Response`. */
  response: 'Success' | 'Failure';
  /** `OriginateResponse` `Reason`: 4 answered, 5 busy, 3 no answer, 8 congestion, 0 failure. */
  reason: number;
}

/** A channel of an originated call: the table's fields, without what only the table keeps. */
type Chan = Omit<LiveChannel, 'Application' | 'ApplicationData' | 'BridgeId' | 'createdAtMs'> & {
  alive: boolean;
};

const CAUSE_TXT: Record<number, string> = {
  0: 'Unknown',
  16: 'Normal Clearing',
  17: 'User busy',
  19: 'User alerting, no answer',
  34: 'Circuit/channel congestion',
};

function snapshot(chan: Chan): AmiEvent {
  const { alive: _alive, ...fields } = chan;
  return fields as unknown as AmiEvent;
}

function prefixed(prefix: string, chan: Chan): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(snapshot(chan))) out[prefix + key] = value as string;
  return out;
}

/**
 * One simulated Originate. Created by the simulator; {@link run} plays the whole call and
 * resolves when it has ended (both channels hung up, or the failure reported).
 */
export class SimCall {
  /** The parsed action. */
  readonly request: OriginateRequest;
  /** The script of the called number. */
  readonly script: SimScript;
  /** The dialplan of the target context (unused for application targets). */
  readonly dialplan: SimDialplan;
  /** The outcome once known (answered, busy, ...); undefined while ringing. */
  result: SimCallResult | undefined;
  /** Resolves with the outcome as soon as it is known (for the sync Originate response). */
  readonly settled: Promise<SimCallResult>;
  /** Keys the dialplan's `Read` collected (empty until then, or on timeout). */
  collected = '';
  /** The originated channel (runs the target), once created. */
  chan1: Chan | undefined;
  /** The callee half of a Local channel (`;2`), once created. */
  chan2: Chan | undefined;

  readonly #host: SimCallHost;
  readonly #abort = new AbortController();
  readonly #vars = new Map<string, string>();
  #settle: (result: SimCallResult) => void = () => {};
  #answeredAt = 0;
  /** Keys received while Read runs, and who waits for them. */
  #reading = false;
  #digitWaiter: (() => void) | undefined;
  #timers = new Set<NodeJS.Timeout>();

  constructor(
    request: OriginateRequest,
    script: SimScript,
    dialplan: SimDialplan,
    host: SimCallHost,
  ) {
    this.request = request;
    this.script = script;
    this.dialplan = dialplan;
    this.#host = host;
    this.settled = new Promise((resolve) => {
      this.#settle = resolve;
    });
    for (const [key, value] of Object.entries(request.variables)) this.#vars.set(key, value);
  }

  /** True while a channel of the call is up or ringing. */
  get live(): boolean {
    return (this.chan1?.alive ?? false) || (this.chan2?.alive ?? false);
  }

  /** Names of the call's live channels. */
  channelNames(): string[] {
    return [this.chan1, this.chan2].filter((c) => c?.alive).map((c) => (c as Chan).Channel);
  }

  /** Stops every timer without emitting anything (simulator shutdown). */
  dispose(): void {
    this.#abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (this.chan1) this.chan1.alive = false;
    if (this.chan2) this.chan2.alive = false;
  }

  #sleep(ms: number): Promise<boolean> {
    if (this.#abort.signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(!this.#abort.signal.aborted);
      }, ms);
      this.#timers.add(timer);
      const onAbort = (): void => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        resolve(false);
      };
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  #later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (!this.#abort.signal.aborted) fn();
    }, ms);
    this.#timers.add(timer);
  }

  #emit(event: string, privilege: string, fields: Record<string, string>): void {
    this.#host.emit({ Event: event, Privilege: privilege, ...fields });
  }

  #chanEvent(
    event: string,
    privilege: string,
    chan: Chan,
    extra: Record<string, string> = {},
  ): void {
    this.#emit(event, privilege, { ...(snapshot(chan) as Record<string, string>), ...extra });
  }

  #newChan(
    name: string,
    state: number,
    context: string,
    exten: string,
    uniqueid: string,
    linkedid: string,
  ): Chan {
    return {
      Channel: name,
      ChannelState: String(state),
      ChannelStateDesc: channelStateDesc(String(state)),
      CallerIDNum: '<unknown>',
      CallerIDName: '<unknown>',
      ConnectedLineNum: '<unknown>',
      ConnectedLineName: '<unknown>',
      Language: 'en',
      AccountCode: this.request.account,
      Context: context,
      Exten: exten,
      Priority: '1',
      Uniqueid: uniqueid,
      Linkedid: linkedid,
      alive: true,
    };
  }

  #setState(chan: Chan, state: number): void {
    chan.ChannelState = String(state);
    chan.ChannelStateDesc = channelStateDesc(String(state));
    this.#chanEvent('Newstate', 'call,all', chan);
  }

  #newexten(chan: Chan, priority: number, application: string, appData: string): void {
    chan.Priority = String(priority);
    this.#chanEvent('Newexten', 'dialplan,all', chan, {
      Extension: chan.Exten,
      Application: application,
      AppData: appData,
    });
  }

  #varSet(chan: Chan, variable: string, value: string): void {
    this.#vars.set(variable, value);
    this.#chanEvent('VarSet', 'dialplan,all', chan, { Variable: variable, Value: value });
  }

  #device(state: string): void {
    const { tech, resource } = this.request;
    const device =
      tech.toLowerCase() === 'local'
        ? `${tech}/${resource.split('/')[0]}`
        : `${tech}/${this.#endpoint()}`;
    this.#emit('DeviceStateChange', 'call,all', { Device: device, State: state });
  }

  #endpoint(): string {
    const { resource } = this.request;
    const first = resource.split('/')[0] ?? resource;
    if (first.includes('@')) return first.slice(first.indexOf('@') + 1);
    return first;
  }

  #isLocal(): boolean {
    return this.request.tech.toLowerCase() === 'local';
  }

  #originateResponse(result: SimCallResult): void {
    this.result = result;
    this.#settle(result);
    if (!this.request.async) return;
    const r = this.request;
    const alive = result.response === 'Success' ? this.chan1 : undefined;
    const fields: Record<string, string> = {};
    if (r.actionId !== undefined) fields.ActionID = r.actionId;
    fields.Response = result.response;
    fields.Channel = alive?.Channel ?? r.channel;
    if (r.application !== undefined) {
      fields.Application = r.application;
      fields.Data = r.data ?? '';
    } else {
      fields.Context = r.context ?? '';
      fields.Exten = r.exten ?? '';
    }
    fields.Reason = String(result.reason);
    fields.Uniqueid = alive?.Uniqueid ?? r.channelId ?? '<null>';
    fields.CallerIDNum = r.callerIdNum || '<unknown>';
    fields.CallerIDName = r.callerIdName || '<unknown>';
    this.#emit('OriginateResponse', 'call,all', fields);
  }

  #dialBegin(chan: Chan): void {
    this.#emit('DialBegin', 'call,all', {
      ...prefixed('Dest', chan),
      DialString: this.request.resource,
    });
  }

  #dialEnd(chan: Chan, status: string): void {
    this.#emit('DialEnd', 'call,all', { ...prefixed('Dest', chan), DialStatus: status });
  }

  #hangupEvent(chan: Chan, cause: number): void {
    chan.alive = false;
    this.#chanEvent('Hangup', 'call,all', chan, {
      Cause: String(cause),
      'Cause-txt': CAUSE_TXT[cause] ?? 'Unknown',
    });
  }

  /**
   * Hangs the call up from `side` (`1` the originated channel: dialplan end or `Hangup` action;
   * `2` the callee), as `call_ab.raw.txt` / `dtmf_local.raw.txt` show: `SoftHangupRequest`,
   * `HangupRequest` on the other half, `Hangup`, ... then `DeviceStateChange NOT_INUSE`.
   */
  hangup(side: 1 | 2, cause = 16): void {
    if (!this.live) return;
    this.#abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const a = side === 1 ? this.chan1 : (this.chan2 ?? this.chan1);
    const b = a === this.chan1 ? this.chan2 : this.chan1;
    if (a === undefined) return;
    const causeField = { Cause: String(cause) };
    if (a.alive) this.#chanEvent('SoftHangupRequest', 'call,all', a, causeField);
    if (b?.alive) this.#chanEvent('HangupRequest', 'call,all', b, causeField);
    if (a.alive) this.#hangupEvent(a, cause);
    if (b?.alive) {
      this.#chanEvent('SoftHangupRequest', 'call,all', b, causeField);
      this.#hangupEvent(b, cause);
    }
    this.#device('NOT_INUSE');
    if (b !== undefined) this.#device('NOT_INUSE');
    if (this.result === undefined) this.#originateResponse({ response: 'Failure', reason: 0 });
  }

  /** A key pressed by the callee (DTMFBegin/DTMFEnd on the originated channel). */
  #press(digit: string): void {
    const chan = this.chan1;
    if (chan === undefined || !chan.alive) return;
    this.#chanEvent('DTMFBegin', 'dtmf,all', chan, { Digit: digit, Direction: 'Received' });
    const durationMs = this.#host.dtmfDurationMs;
    this.#later(durationMs, () => {
      if (!chan.alive) return;
      this.#chanEvent('DTMFEnd', 'dtmf,all', chan, {
        Digit: digit,
        DurationMs: String(durationMs),
        Direction: 'Received',
      });
      if (this.#reading) {
        this.collected += digit;
        this.#digitWaiter?.();
      }
    });
  }

  #scheduleCallee(): void {
    const { dtmf, dtmfAfterMs, hangupAfterMs } = this.script;
    if (dtmf !== '') {
      this.#later(dtmfAfterMs, () => {
        if (this.#isLocal() && this.chan2?.alive) this.#newexten(this.chan2, 3, 'SendDTMF', dtmf);
        const step = 2 * this.#host.dtmfDurationMs;
        [...dtmf].forEach((digit, i) => {
          if (i === 0) this.#press(digit);
          else this.#later(i * step, () => this.#press(digit));
        });
      });
    }
    this.#later(hangupAfterMs, () => this.hangup(2, 16));
  }

  /** Substitutes `${VAR}` in a UserEvent field. */
  #expand(text: string): string {
    const chan = this.chan1;
    return text.replace(/\$\{([^}]+)\}/g, (_m, name: string) => {
      switch (name) {
        case 'EXTEN':
          return chan?.Exten ?? '';
        case 'CONTEXT':
          return chan?.Context ?? '';
        case 'UNIQUEID':
          return chan?.Uniqueid ?? '';
        case 'CHANNEL':
          return chan?.Channel ?? '';
        case 'CALLERID(num)':
          return chan?.CallerIDNum ?? '';
        case 'CALLERID(name)':
          return chan?.CallerIDName ?? '';
        default:
          return this.#vars.get(name) ?? '';
      }
    });
  }

  /** The `UserEvent` application data (`Name,Key: value,...`), variables substituted. */
  #userEventData(event: SimUserEvent): string {
    return [
      event.name,
      ...Object.entries(event.fields).map(([k, v]) => `${k}: ${this.#expand(v)}`),
    ].join(',');
  }

  #userEvent(event: SimUserEvent): void {
    const chan = this.chan1;
    if (chan === undefined) return;
    const entries: [string, string][] = [['UserEvent', event.name]];
    const base = snapshot(chan);
    for (const [key, value] of Object.entries(event.fields)) {
      // A name every channel event already has would replace it: skipped (validateDialplan refuses it).
      if (Object.hasOwn(base, key) || key === 'Event' || key === 'Privilege' || key === 'UserEvent')
        continue;
      entries.push([key, this.#expand(value)]);
    }
    // Object.fromEntries: a field named like `__proto__` or `toString` stays an own field.
    this.#chanEvent('UserEvent', 'user,all', chan, Object.fromEntries(entries));
  }

  /**
   * `Read(VAR,prompt,maxdigits,options,attempts,timeout)`: `VarSet READSTATUS ERROR` at the
   * start (as the wire logs show), keys until `maxdigits` / `#` / timeout, then `VarSet VAR`
   * and `VarSet READSTATUS OK|TIMEOUT`. Returns false if the call ended meanwhile.
   */
  async #read(chan: Chan, data: string, timeoutMs: number | undefined): Promise<boolean> {
    this.#varSet(chan, 'READSTATUS', 'ERROR');
    return this.#readAfterStart(chan, data, timeoutMs);
  }

  /** Plays the whole call. Never rejects. */
  async run(): Promise<void> {
    try {
      await this.#run();
    } catch {
      // A closed simulator: nothing to report.
    }
  }

  async #run(): Promise<void> {
    const r = this.request;
    const { outcome, answerAfterMs } = this.script;
    if (outcome === 'fail') {
      if (!(await this.#sleep(Math.min(answerAfterMs, r.timeoutMs)))) return;
      this.#originateResponse({ response: 'Failure', reason: 0 });
      return;
    }
    const local = this.#isLocal();
    const seq = this.#host.nextSequence();
    const id1 = r.channelId ?? this.#host.nextUniqueid();
    let chan1: Chan;
    let chan2: Chan | undefined;
    const appMode = r.application !== undefined;
    if (local) {
      const [extenPart = '', contextPart = 'default'] = (r.resource.split('/')[0] ?? '').split('@');
      const base = `${r.tech}/${r.resource.split('/')[0]}-${seq}`;
      const id2 = r.otherChannelId ?? this.#host.nextUniqueid();
      chan1 = this.#newChan(`${base};1`, 0, contextPart, extenPart, id1, id1);
      chan2 = this.#newChan(`${base};2`, 4, contextPart, extenPart, id2, id1);
    } else {
      chan1 = this.#newChan(
        `${r.tech}/${this.#endpoint()}-${seq}`,
        0,
        r.context ?? 'default',
        r.number,
        id1,
        id1,
      );
    }
    this.chan1 = chan1;
    this.chan2 = chan2;
    this.#chanEvent('Newchannel', 'call,all', chan1);
    if (chan2) this.#chanEvent('Newchannel', 'call,all', chan2);
    for (const [key, value] of Object.entries(r.variables)) this.#varSet(chan1, key, value);
    if (chan2) this.#newexten(chan1, 1, 'AppDial2', '(Outgoing Line)');
    if (r.callerIdNum !== '' || r.callerIdName !== '') {
      for (const chan of chan2 ? [chan1, chan2] : [chan1]) {
        chan.CallerIDNum = r.callerIdNum || '<unknown>';
        chan.CallerIDName = r.callerIdName || '<unknown>';
        this.#chanEvent('NewCallerid', 'call,all', chan, {
          'CID-CallingPres': '0 (Presentation Allowed, Not Screened)',
        });
        chan.ConnectedLineNum = chan.CallerIDNum;
        chan.ConnectedLineName = chan.CallerIDName;
        this.#chanEvent('NewConnectedLine', 'call,all', chan);
      }
    }
    if (chan2) {
      this.#emit('LocalBridge', 'call,all', {
        ...prefixed('LocalOne', chan1),
        ...prefixed('LocalTwo', chan2),
        Context: chan2.Context,
        Exten: chan2.Exten,
        LocalOptimization: 'Yes',
      });
    }
    const ringing = answerAfterMs > 0 || outcome === 'noanswer';
    // Application targets answered at once follow dtmf_originate_app.raw.txt: the callee
    // answers before DialBegin. Otherwise dtmf_local.raw.txt / call_ab.raw.txt.
    const answerFirst = appMode && !ringing && outcome === 'answer' && chan2 !== undefined;
    if (!answerFirst) this.#dialBegin(chan1);
    if (ringing) {
      if (chan2) this.#newexten(chan2, 1, 'Ringing', '');
      this.#setState(chan1, 5);
      this.#device('RINGING');
      if (chan2) this.#newexten(chan2, 2, 'Wait', String(Math.ceil(answerAfterMs / 1000)));
      const ringMs = outcome === 'noanswer' ? r.timeoutMs : Math.min(answerAfterMs, r.timeoutMs);
      if (!(await this.#sleep(ringMs))) return;
      if (outcome === 'answer' && answerAfterMs > r.timeoutMs) {
        return this.#fail(chan1, chan2, 19, 'NOANSWER', 3);
      }
    }
    if (outcome === 'noanswer') return this.#fail(chan1, chan2, 19, 'NOANSWER', 3);
    if (outcome === 'busy') {
      if (chan2) this.#newexten(chan2, ringing ? 3 : 1, 'Busy', '');
      return this.#fail(chan1, chan2, 17, 'BUSY', 5);
    }
    if (outcome === 'congestion') {
      if (chan2) this.#newexten(chan2, ringing ? 3 : 1, 'Congestion', '');
      return this.#fail(chan1, chan2, 34, 'CONGESTION', 8);
    }
    // Answered.
    this.#answeredAt = Date.now();
    const answered: SimCallResult = { response: 'Success', reason: 4 };
    if (chan2) {
      this.#newexten(chan2, ringing ? 3 : 1, 'Answer', '');
      this.#setState(chan2, 6);
    }
    if (answerFirst) {
      this.#dialBegin(chan1);
      this.#setState(chan1, 6);
      this.#dialEnd(chan1, 'ANSWER');
      return this.#runApplication(chan1, chan2, answered);
    }
    if (appMode) {
      this.#setState(chan1, 6);
      this.#dialEnd(chan1, 'ANSWER');
      return this.#runApplication(chan1, chan2, answered);
    }
    if (chan2 === undefined) this.#setState(chan1, 6);
    this.#device('INUSE');
    this.#originateResponse(answered);
    if (chan2 !== undefined) this.#setState(chan1, 6);
    this.#dialEnd(chan1, 'ANSWER');
    this.#scheduleCallee();
    await this.#runDialplan(chan1, chan2);
  }

  async #fail(
    chan1: Chan,
    chan2: Chan | undefined,
    cause: number,
    dialStatus: string,
    reason: number,
  ): Promise<void> {
    this.#hangupEvent(chan1, cause);
    this.#dialEnd(chan1, dialStatus);
    if (chan2) this.#hangupEvent(chan2, cause);
    this.#device('NOT_INUSE');
    this.#originateResponse({ response: 'Failure', reason });
  }

  /** The simulated dialplan of the target context on the originated channel. */
  async #runDialplan(chan1: Chan, chan2: Chan | undefined): Promise<void> {
    const plan = this.dialplan;
    const r = this.request;
    chan1.Context = r.context ?? 'default';
    chan1.Exten = r.exten ?? 's';
    let priority = Number(r.priority ?? '1') || 1;
    this.#newexten(chan1, priority++, 'Answer', '');
    if (plan.playback !== '') {
      this.#newexten(chan1, priority++, 'Playback', plan.playback);
    }
    this.#device('INUSE');
    if (chan2)
      this.#newexten(chan2, 2, 'Wait', String(Math.ceil(this.script.hangupAfterMs / 1000)));
    if (plan.playback !== '') {
      if (!(await this.#sleep(plan.playbackMs))) return;
      this.#varSet(chan1, 'PLAYBACKSTATUS', 'SUCCESS');
    }
    let accepted = true;
    if (plan.read !== '') {
      const validKeys = plan.validKeys ?? '';
      const rounds = validKeys === '' ? 1 : Math.max(1, plan.rounds ?? 3);
      const variable = plan.read.split(',')[0] || 'READ';
      const readPriority = priority++;
      let silent = 0;
      for (let round = 1; ; round++) {
        this.#newexten(chan1, readPriority, 'Read', plan.read);
        if (!(await this.#read(chan1, plan.read, plan.readTimeoutMs))) return;
        if (validKeys === '') break;
        const digit = this.#vars.get(variable) ?? '';
        if (digit === '') {
          // No key: the message plays again (`silentRepeats` times, 1 in the shipped dialplan)
          // while rounds remain, then the call ends without a UserEvent (the shipped
          // dialplan's SwitchboardNoKey is not simulated).
          silent += 1;
          if (silent <= (plan.silentRepeats ?? 1) && round < rounds) continue;
          accepted = false;
          break;
        }
        if (validKeys.includes(digit)) break;
        // A wrong key (docs/asterisk/extensions.conf): SwitchboardInvalidKey, then re-prompt
        // in the same call while rounds remain.
        const invalid =
          plan.invalidKeyEvent === undefined
            ? // biome-ignore lint/suspicious/noTemplateCurlyInString: a dialplan variable
              { name: 'SwitchboardInvalidKey', fields: { Digit: '${DIGIT}' } }
            : plan.invalidKeyEvent;
        if (invalid !== null) {
          this.#newexten(chan1, readPriority + 1, 'UserEvent', this.#userEventData(invalid));
          this.#userEvent(invalid);
        }
        if (round >= rounds) {
          accepted = false;
          break;
        }
      }
    }
    if (accepted && plan.userEvent !== null) {
      this.#newexten(chan1, priority++, 'UserEvent', this.#userEventData(plan.userEvent));
      this.#userEvent(plan.userEvent);
    }
    this.#newexten(chan1, priority, 'Hangup', '');
    this.hangup(1, 16);
  }

  /** An `Application` target (dtmf_originate_app.raw.txt for `Read`). */
  async #runApplication(
    chan1: Chan,
    chan2: Chan | undefined,
    answered: SimCallResult,
  ): Promise<void> {
    const app = (this.request.application ?? '').toLowerCase();
    const data = this.request.data ?? '';
    if (app === 'read') this.#varSet(chan1, 'READSTATUS', 'ERROR');
    this.#device('INUSE');
    if (chan2) this.#device('INUSE');
    if (chan2)
      this.#newexten(chan2, 2, 'Wait', String(Math.ceil(this.script.hangupAfterMs / 1000)));
    this.#originateResponse(answered);
    this.#scheduleCallee();
    if (app === 'read') {
      // READSTATUS ERROR was sent above, in the log's order.
      if (!(await this.#readAfterStart(chan1, data, this.dialplan.readTimeoutMs))) return;
      if (this.#host.applicationUserEvent !== null)
        this.#userEvent(this.#host.applicationUserEvent);
    } else if (app === 'playback') {
      if (!(await this.#sleep(this.dialplan.playbackMs))) return;
      this.#varSet(chan1, 'PLAYBACKSTATUS', 'SUCCESS');
    } else if (app === 'wait') {
      if (!(await this.#sleep((Number(data) || 0) * 1000))) return;
    } else {
      return; // Runs until the callee or a Hangup action ends it.
    }
    this.#applicationEnd(chan1, chan2);
  }

  /** Collects keys for `Read` (after its `VarSet READSTATUS ERROR`); false if the call ended. */
  async #readAfterStart(chan: Chan, data: string, timeoutMs: number | undefined): Promise<boolean> {
    const args = data.split(',');
    const variable = args[0] || 'READ';
    const maxDigits = Number(args[2]) || 255;
    const limitMs = timeoutMs ?? (Number(args[5]) > 0 ? Number(args[5]) * 1000 : 5000);
    this.collected = '';
    this.#reading = true;
    const deadline = Date.now() + limitMs;
    while (!this.collected.includes('#') && this.collected.length < maxDigits) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      if (!(await this.#waitDigit(remaining))) return false;
    }
    this.#reading = false;
    const value = this.collected.split('#')[0] ?? '';
    this.#varSet(chan, variable, value);
    this.#varSet(chan, 'READSTATUS', value === '' ? 'TIMEOUT' : 'OK');
    return true;
  }

  #waitDigit(remainingMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => resolve(false);
      const timer = setTimeout(() => {
        this.#timers.delete(timer);
        this.#digitWaiter = undefined;
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(true);
      }, remainingMs);
      this.#timers.add(timer);
      this.#digitWaiter = () => {
        clearTimeout(timer);
        this.#timers.delete(timer);
        this.#digitWaiter = undefined;
        this.#abort.signal.removeEventListener('abort', onAbort);
        resolve(true);
      };
      this.#abort.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** End of an application target (dtmf_originate_app.raw.txt): causes 0 "Unknown". */
  #applicationEnd(chan1: Chan, chan2: Chan | undefined): void {
    this.#abort.abort();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    if (chan2?.alive) this.#chanEvent('HangupRequest', 'call,all', chan2, { Cause: '0' });
    if (chan1.alive) this.#hangupEvent(chan1, 0);
    if (chan2?.alive) {
      this.#chanEvent('SoftHangupRequest', 'call,all', chan2, { Cause: '16' });
      this.#hangupEvent(chan2, 0);
    }
    this.#device('NOT_INUSE');
    if (chan2) this.#device('NOT_INUSE');
  }

  /** Milliseconds since the answer (0 before). */
  get talkMs(): number {
    return this.#answeredAt === 0 ? 0 : Date.now() - this.#answeredAt;
  }
}
