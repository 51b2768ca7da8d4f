/**
 * Why this file is long: a large part is data, the tables of every AMI action and event a
 * feature uses with the class it needs ({@link AMI_REQUIREMENTS}, {@link AMI_CORE_ACTIONS}),
 * kept beside the parsing and checks that read it so that a new need is one entry here.
 *
 * What an Asterisk manager user may read and run (`read =` / `write =` of its `manager.conf`
 * section), as far as Asterisk 22 lets the user itself find out, and what each Switchboard
 * feature needs. See docs/ami.md ("Permissions").
 *
 * Asterisk has no action that tells a manager user its own classes (source: `main/manager.c`
 * of Asterisk 22). What it does give:
 *
 * - **write**: `ListCommands` (an action every user may run) lists exactly the actions the
 *   user may run, each as `Name: synopsis (Priv: classes)`. Asterisk runs an action when
 *   `writeperm & authority` is not 0, so a listed action proves one of its classes; a core
 *   action (always registered, {@link AMI_CORE_ACTIONS}) missing from the list proves that
 *   the user has none of its classes. Any other action is refused with `Response: Error`,
 *   `Message: Permission denied`.
 * - **read**: Asterisk sends an event to a session only if `(send_events & category) ==
 *   category`, where `send_events` is the user's `read` classes masked by the login's
 *   `Events`; an event it may not send is simply not sent. So a missing read class is
 *   silence, and can only be inferred: every event received proves the classes its
 *   `Privilege` header names ({@link ReadEvidence}); `FullyBooted` after the login proves
 *   `system`; a `UserEvent` the client sends itself (which needs write `user`) comes back
 *   only if it may read `user` ({@link amiPermissions}). The `Events` action answers
 *   `Events: On` whatever the read classes, and the login answer names none.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { AmiActionError } from './errors.ts';
import { type AmiEvent, type AmiMessage, field } from './message.ts';
import type { AmiAction } from './protocol.ts';

/** The permission classes of Asterisk 22 (`perms[]` of `main/manager.c`), without `all`. */
export const AMI_CLASSES = [
  'system',
  'call',
  'log',
  'verbose',
  'command',
  'agent',
  'user',
  'config',
  'dtmf',
  'reporting',
  'cdr',
  'dialplan',
  'originate',
  'agi',
  'cc',
  'aoc',
  'test',
  'security',
  'message',
] as const;

/** One permission class (`manager.conf` `read =` / `write =`, an event's `Privilege`). */
export type AmiClass = (typeof AMI_CLASSES)[number];

const CLASS_SET: ReadonlySet<string> = new Set(AMI_CLASSES);

/** Whether a user has a class: known to be granted, known to be missing, or not knowable (yet). */
export type AmiAccess = 'granted' | 'missing' | 'unknown';

/** An action Asterisk 22 always registers (`main/manager.c`), as `ListCommands` shows it. */
export interface AmiActionInfo {
  /** The action name as Asterisk spells it (`CoreShowChannels`). */
  name: string;
  /** Write classes that allow it, any one of them (`authority`); empty: every user may run it. */
  classes: readonly AmiClass[];
  /** Its synopsis (`main/manager_doc.xml`), as `ListCommands` prints it. */
  synopsis: string;
}

function action(name: string, classes: readonly AmiClass[], synopsis: string): AmiActionInfo {
  return { name, classes, synopsis };
}

/**
 * The core actions of Asterisk 22 with the classes that allow them (`ast_manager_register_xml_core`
 * calls of `main/manager.c`), by lower-case name. Modules (app_queue, res_pjsip, ...) register
 * more; those are not listed here.
 */
export const AMI_CORE_ACTIONS: ReadonlyMap<string, AmiActionInfo> = new Map(
  [
    action('Ping', [], 'Keepalive command.'),
    action('Events', [], 'Control Event Flow.'),
    action('Logoff', [], 'Logoff Manager.'),
    action('Login', [], 'Login Manager.'),
    action('Challenge', [], 'Generate Challenge for MD5 Auth.'),
    action('Hangup', ['system', 'call'], 'Hangup channel.'),
    action('Status', ['system', 'call', 'reporting'], 'List channel status.'),
    action('Setvar', ['call'], 'Sets a channel variable or function value.'),
    action('Getvar', ['call', 'reporting'], 'Gets a channel variable or function value.'),
    action('GetConfig', ['system', 'config'], 'Retrieve configuration.'),
    action('GetConfigJSON', ['system', 'config'], 'Retrieve configuration (JSON format).'),
    action('UpdateConfig', ['config'], 'Update basic configuration.'),
    action('CreateConfig', ['config'], 'Creates an empty file in the configuration directory.'),
    action('ListCategories', ['config'], 'List categories in configuration file.'),
    action('Redirect', ['call'], 'Redirect (transfer) a call.'),
    action('Atxfer', ['call'], 'Attended transfer.'),
    action('CancelAtxfer', ['call'], 'Cancel an attended transfer.'),
    action('Originate', ['originate'], 'Originate a call.'),
    action('Command', ['command'], 'Execute Asterisk CLI Command.'),
    action('ExtensionState', ['call', 'reporting'], 'Check Extension Status.'),
    action('PresenceState', ['call', 'reporting'], 'Check Presence State'),
    action('AbsoluteTimeout', ['system', 'call'], 'Set absolute timeout.'),
    action('MailboxStatus', ['call', 'reporting'], 'Check mailbox.'),
    action('MailboxCount', ['call', 'reporting'], 'Check Mailbox Message Count.'),
    action('ListCommands', [], 'List available manager commands.'),
    action('SendText', ['call'], 'Sends a text message to channel.'),
    action('UserEvent', ['user'], 'Send an arbitrary event.'),
    action('WaitEvent', [], 'Wait for an event to occur.'),
    action('CoreSettings', ['system', 'reporting'], 'Show PBX core settings (version etc).'),
    action('CoreStatus', ['system', 'reporting'], 'Show PBX core status variables.'),
    action('Reload', ['system', 'config'], 'Send a reload event.'),
    action('LoggerRotate', ['system', 'reporting'], 'Reload and rotate the Asterisk logger.'),
    action('CoreShowChannels', ['system', 'reporting'], 'List currently active channels.'),
    action(
      'CoreShowChannelMap',
      ['system', 'reporting'],
      'List all channels connected to the specified channel.',
    ),
    action('ModuleLoad', ['system'], 'Module management.'),
    action('ModuleCheck', ['system'], 'Check if module is loaded.'),
    action('AOCMessage', ['aoc'], 'Generate an Advice of Charge message on a channel.'),
    action('Filter', ['system'], 'Dynamically add filters for the current manager session.'),
    action('BlindTransfer', ['call'], 'Blind transfer channel(s) to the given destination'),
  ].map((info) => [info.name.toLowerCase(), info]),
);

/**
 * The classes a `Privilege` value or a `(Priv: ...)` of `ListCommands` names, e.g.
 * `call,all` → `['call']`; `all`, `none`, `<none>` and unknown labels are left out.
 */
export function parseClasses(text: string): AmiClass[] {
  const classes: AmiClass[] = [];
  for (const part of text.split(',')) {
    const label = part.trim().toLowerCase();
    if (CLASS_SET.has(label) && !classes.includes(label as AmiClass)) {
      classes.push(label as AmiClass);
    }
  }
  return classes;
}

/** Bit of each class in Asterisk's masks (`EVENT_FLAG_*` of `include/asterisk/manager.h`). */
const CLASS_BITS: Readonly<Record<AmiClass, number>> = {
  system: 1 << 0,
  call: 1 << 1,
  log: 1 << 2,
  verbose: 1 << 3,
  command: 1 << 4,
  agent: 1 << 5,
  user: 1 << 6,
  config: 1 << 7,
  dtmf: 1 << 8,
  reporting: 1 << 9,
  cdr: 1 << 10,
  dialplan: 1 << 11,
  originate: 1 << 12,
  agi: 1 << 13,
  cc: 1 << 15,
  aoc: 1 << 16,
  test: 1 << 17,
  security: 1 << 18,
  message: 1 << 30,
};

/**
 * A class list as `manager.conf` (`read =`, `write =`) and the login's `Events` spell it,
 * read as Asterisk's `strings_to_mask` / `get_perm` do: all digits is a bit mask;
 * `on`/`yes`/`true`/`y`/`t` (and a list naming `all`) every class; `off`/`no`/`false`/`n`/`f`,
 * `none` and '' none; otherwise the classes named.
 */
export function parseClassList(text: string): Set<AmiClass> {
  const value = text.trim().toLowerCase();
  if (/^[0-9]+$/.test(value)) {
    const mask = Number.parseInt(value, 10);
    return new Set(AMI_CLASSES.filter((name) => (mask & CLASS_BITS[name]) !== 0));
  }
  if (['on', 'yes', 'true', 'y', 't'].includes(value)) return new Set(AMI_CLASSES);
  if (['', 'off', 'no', 'false', 'n', 'f', 'none'].includes(value)) return new Set();
  if (value.split(',').some((part) => part.trim() === 'all')) return new Set(AMI_CLASSES);
  return new Set<AmiClass>(parseClasses(value));
}

/** One action of a `ListCommands` answer. */
export interface ListedAction {
  /** As Asterisk spells it. */
  name: string;
  /** Its `(Priv: ...)` classes; empty for `<none>`. */
  classes: readonly AmiClass[];
}

const PRIV = /\(Priv: ([^)]*)\)\s*$/;

/**
 * The actions of a `ListCommands` response, by lower-case name. Asterisk answers
 * `Response: Success` followed by one `Name: synopsis (Priv: classes)` line per action the
 * user may run (`action_listcommands` of `main/manager.c`). Lines without `(Priv: ...)` are
 * left out.
 */
export function parseListCommands(response: AmiMessage): Map<string, ListedAction> {
  const actions = new Map<string, ListedAction>();
  for (const key of Object.keys(response)) {
    if (key === 'Response' || key === 'ActionID' || key === 'Message') continue;
    const value = field(response, key);
    const match = value === undefined ? null : PRIV.exec(value);
    if (match === null) continue;
    actions.set(key.toLowerCase(), { name: key, classes: parseClasses(match[1] ?? '') });
  }
  return actions;
}

function allClasses(value: AmiAccess): Record<AmiClass, AmiAccess> {
  return Object.fromEntries(AMI_CLASSES.map((name) => [name, value])) as Record<
    AmiClass,
    AmiAccess
  >;
}

/**
 * The write classes a `ListCommands` answer reveals: a class is `missing` when a core action
 * of that class is not listed (Asterisk lists every action the user may run), `granted` when
 * a listed action has it as its only class not known missing, `unknown` otherwise (only
 * core actions are known to exist).
 */
export function writeClassesFrom(
  actions: ReadonlyMap<string, ListedAction>,
): Record<AmiClass, AmiAccess> {
  const write = allClasses('unknown');
  for (const [name, info] of AMI_CORE_ACTIONS) {
    if (!actions.has(name)) for (const name of info.classes) write[name] = 'missing';
  }
  for (const listed of actions.values()) {
    const possible = listed.classes.filter((name) => write[name] !== 'missing');
    if (possible.length === 1) write[possible[0] as AmiClass] = 'granted';
  }
  return write;
}

/**
 * The read classes proven by the events of one connection: Asterisk sends an event
 * (`manager_event`) only if the session may read every class its `Privilege` names. Feed it
 * every event from the login
 * on; {@link reset} at a disconnect (read classes are fixed per login). Cheap: a `Privilege`
 * value already seen costs one set lookup.
 */
export class ReadEvidence {
  readonly #classes = new Set<AmiClass>();
  readonly #privileges = new Set<string>();

  /** Classes proven so far. */
  get classes(): ReadonlySet<AmiClass> {
    return this.#classes;
  }

  /**
   * Notes one event. Returns the classes it proved for the first time (usually none). Events
   * with an `ActionID` prove nothing: the items of an action's answer (`Event: Status`,
   * `Privilege: Call`) are sent whatever the user may read.
   */
  observe(event: AmiEvent): AmiClass[] | undefined {
    const privilege = event.Privilege;
    if (typeof privilege !== 'string' || this.#privileges.has(privilege)) return undefined;
    if (event.ActionID !== undefined) return undefined;
    if (this.#privileges.size < 256) this.#privileges.add(privilege);
    let added: AmiClass[] | undefined;
    for (const name of parseClasses(privilege)) {
      if (this.#classes.has(name)) continue;
      this.#classes.add(name);
      if (added === undefined) added = [name];
      else added.push(name);
    }
    return added;
  }

  /** Forgets everything (a new login may read other classes). */
  reset(): void {
    this.#classes.clear();
    this.#privileges.clear();
  }
}

/** A Switchboard feature that needs AMI permissions. */
export type AmiFeature = 'calls' | 'callout' | 'announce';

/** Every {@link AmiFeature}. */
export const AMI_FEATURES: readonly AmiFeature[] = ['calls', 'callout', 'announce'];

/** What one feature needs of the manager user. */
export interface AmiRequirement {
  feature: AmiFeature;
  access: 'read' | 'write';
  /** Any one of these classes is enough (write: the classes of {@link action}). */
  classes: readonly AmiClass[];
  /** For write: the action that needs it. */
  action?: string;
  /** `broken`: the feature cannot work without it; `degraded`: part of it is lost. */
  severity: 'broken' | 'degraded';
  /** What is lost without it, in one sentence. */
  effect: string;
}

/** Human name of a feature in log lines. */
export const FEATURE_NAMES: Readonly<Record<AmiFeature, string>> = {
  calls: 'call events',
  callout: 'alert calls',
  announce: 'announcements',
};

/**
 * What each feature needs (docs/ami.md, "Permissions", has the same table). `calls` is the
 * call-event engine (`watch`, `serve`); `callout` the alert calls with the asterisk
 * provider; `announce` announcements played by `Originate`.
 */
export const AMI_REQUIREMENTS: readonly AmiRequirement[] = [
  {
    feature: 'calls',
    access: 'read',
    classes: ['call'],
    severity: 'broken',
    effect:
      'Asterisk sends none of the channel, dial, bridge, transfer and hang-up events, so no call is reported',
  },
  {
    feature: 'calls',
    access: 'read',
    classes: ['agent'],
    severity: 'degraded',
    effect: 'queue_caller_abandon is never reported (QueueCallerAbandon is of class agent)',
  },
  {
    feature: 'calls',
    access: 'read',
    classes: ['user'],
    severity: 'degraded',
    effect: 'user_event is never reported (UserEvent is of class user)',
  },
  {
    feature: 'calls',
    access: 'write',
    classes: ['system', 'reporting'],
    action: 'CoreShowChannels',
    severity: 'degraded',
    effect:
      'calls in progress are not resynchronised after a (re)connect: they are kept as they were and followed by their live events; a call that ended while the connection was down is never reported hung up',
  },
  {
    feature: 'callout',
    access: 'write',
    classes: ['originate'],
    action: 'Originate',
    severity: 'broken',
    effect: 'no alert call can be placed',
  },
  {
    feature: 'callout',
    access: 'read',
    classes: ['user'],
    severity: 'broken',
    effect:
      'the key a callee presses (UserEvent SwitchboardDTMF) never arrives: every answered call counts as no answer and the person is called again',
  },
  {
    feature: 'callout',
    access: 'read',
    classes: ['call'],
    severity: 'broken',
    effect: 'the answer and hang-up of a placed call (OriginateResponse, Hangup) never arrive',
  },
  {
    feature: 'callout',
    access: 'write',
    classes: ['system', 'call'],
    action: 'Hangup',
    severity: 'degraded',
    effect: 'a call that outlives its longest duration is not hung up by Switchboard',
  },
  {
    feature: 'announce',
    access: 'write',
    classes: ['originate'],
    action: 'Originate',
    severity: 'broken',
    effect: 'no announcement can be played (announce.playback: originate)',
  },
  {
    feature: 'announce',
    access: 'read',
    classes: ['call'],
    severity: 'broken',
    effect: 'the end of an announcement (OriginateResponse, Hangup) never arrives',
  },
];

/** A requirement the user does not meet (`missing`) or that cannot be checked (`unknown`). */
export interface AmiPermissionProblem extends AmiRequirement {
  state: 'missing' | 'unknown';
}

/** What {@link amiPermissions} found out about one manager user. */
export interface AmiPermissions {
  /** The server's name (`AmiClient.name`). */
  server: string;
  /** Actions the user may run (`ListCommands`), by lower-case name; `undefined` when it failed. */
  actions: ReadonlyMap<string, ListedAction> | undefined;
  /** Read classes: `granted` when an event proved it or the probe came back, `missing` when the probe did not. */
  read: Record<AmiClass, AmiAccess>;
  /** Write classes, from `ListCommands` ({@link writeClassesFrom}). */
  write: Record<AmiClass, AmiAccess>;
  /**
   * How read `user` was found: `probe` (a `UserEvent` sent and received or not), `events`
   * (one arrived on its own), `none` (not knowable: the `UserEvent` action was refused).
   */
  userReadBy: 'probe' | 'events' | 'none';
}

/** May the user run `action`? From `ListCommands`; `unknown` without its answer. */
export function mayRun(permissions: AmiPermissions, actionName: string): AmiAccess {
  if (permissions.actions === undefined) return 'unknown';
  return permissions.actions.has(actionName.toLowerCase()) ? 'granted' : 'missing';
}

/** Access for one requirement: write by its action, read by its classes (any granted). */
function accessFor(permissions: AmiPermissions, requirement: AmiRequirement): AmiAccess {
  if (requirement.access === 'write' && requirement.action !== undefined) {
    return mayRun(permissions, requirement.action);
  }
  const table = requirement.access === 'read' ? permissions.read : permissions.write;
  const states = requirement.classes.map((name) => table[name]);
  if (states.includes('granted')) return 'granted';
  if (states.every((state) => state === 'missing')) return 'missing';
  return 'unknown';
}

/**
 * The requirements of `features` that `permissions` does not meet (`missing`) or cannot show
 * to be met (`unknown`), in the order of {@link AMI_REQUIREMENTS}.
 */
export function permissionProblems(
  permissions: AmiPermissions,
  features: readonly AmiFeature[] = AMI_FEATURES,
): AmiPermissionProblem[] {
  const problems: AmiPermissionProblem[] = [];
  for (const requirement of AMI_REQUIREMENTS) {
    if (!features.includes(requirement.feature)) continue;
    const state = accessFor(permissions, requirement);
    if (state !== 'granted') problems.push({ ...requirement, state });
  }
  return problems;
}

/** `read class user` / `write class system or reporting (CoreShowChannels)`. */
export function describeNeed(problem: AmiRequirement): string {
  const classes = problem.classes.join(' or ');
  return problem.access === 'read'
    ? `read class ${classes}`
    : `write class ${classes} (${problem.action ?? 'action'})`;
}

/**
 * One log line per missing permission: the class, what to set in `manager.conf`, and what
 * each feature loses. Problems of the same need (e.g. read `user` for alert calls and call
 * events) share the line.
 */
export function describeMissing(
  server: string,
  problems: readonly AmiPermissionProblem[],
): string[] {
  const byNeed = new Map<string, AmiPermissionProblem[]>();
  for (const problem of problems) {
    if (problem.state !== 'missing') continue;
    const need = describeNeed(problem);
    const list = byNeed.get(need);
    if (list === undefined) byNeed.set(need, [problem]);
    else list.push(problem);
  }
  const lines: string[] = [];
  for (const [need, list] of byNeed) {
    const first = list[0] as AmiPermissionProblem;
    const setting =
      first.access === 'read'
        ? `add ${first.classes[0]} to read = in manager.conf, and to events= of the AMI URL if it has one`
        : `add ${first.classes.at(-1)} to write = in manager.conf`;
    const effects = list.map((p) => `${FEATURE_NAMES[p.feature]}: ${p.effect}`).join('; ');
    lines.push(`${server}: the AMI user lacks ${need}: ${effects} (${setting})`);
  }
  return lines;
}

/** What {@link amiPermissions} needs of a client: an `AmiClient` has it. */
export interface AmiPermissionSource {
  readonly name: string;
  action(action: AmiAction, options?: { timeoutMs?: number }): Promise<{ response: AmiMessage }>;
  on(event: 'event', listener: (event: AmiEvent) => void): unknown;
  off(event: 'event', listener: (event: AmiEvent) => void): unknown;
}

/** Options of {@link amiPermissions}. */
export interface AmiPermissionsOptions {
  /** Longest wait for the probe `UserEvent` to come back, in ms. Default 3000. */
  probeTimeoutMs?: number;
  /** Classes the connection's events proved so far (e.g. `FullyBooted` → `system`). */
  evidence?: ReadEvidence;
  /** Timeout of `ListCommands` and `UserEvent`, in ms. Default: the client's. */
  actionTimeoutMs?: number;
}

/** `UserEvent` name of the read-`user` probe. */
export const PROBE_USER_EVENT = 'SwitchboardPermissionProbe';

/** True for Asterisk's answer to an action the user may not run. */
export function isPermissionDenied(error: unknown): boolean {
  return error instanceof AmiActionError && error.amiMessage === 'Permission denied';
}

/**
 * Finds out what the logged-in manager user of `client` may read and run: `ListCommands`
 * for the write side, then, when the user may run `UserEvent`, a probe for read `user`: a
 * `UserEvent: SwitchboardPermissionProbe` with a random `Probe` header, which comes back
 * within `probeTimeoutMs` only if the user may read `user` (other AMI clients of the PBX see
 * it too). Other read classes are `granted` when `evidence` saw an event of theirs, else
 * `unknown` (Asterisk cannot be asked; see the module comment). For `switchboard doctor` and
 * the live runner, which checks at every (re)connect.
 *
 * Never throws: an action that fails leaves what it would have shown `unknown`.
 */
export async function amiPermissions(
  client: AmiPermissionSource,
  options: AmiPermissionsOptions = {},
): Promise<AmiPermissions> {
  const timeout =
    options.actionTimeoutMs === undefined ? {} : { timeoutMs: options.actionTimeoutMs };
  let actions: Map<string, ListedAction> | undefined;
  try {
    const { response } = await client.action({ Action: 'ListCommands' }, timeout);
    actions = parseListCommands(response);
  } catch {
    actions = undefined;
  }
  const write = actions === undefined ? allClasses('unknown') : writeClassesFrom(actions);
  const read = allClasses('unknown');
  for (const name of options.evidence?.classes ?? []) read[name] = 'granted';
  let userReadBy: AmiPermissions['userReadBy'] = read.user === 'granted' ? 'events' : 'none';
  if (read.user !== 'granted' && (actions === undefined || actions.has('userevent'))) {
    const result = await probeUserRead(client, options.probeTimeoutMs ?? 3000, timeout);
    if (result !== 'unknown') {
      read.user = result;
      userReadBy = 'probe';
    }
  }
  // An event that proved a class while we waited counts too.
  for (const name of options.evidence?.classes ?? []) read[name] = 'granted';
  if (read.user === 'granted' && userReadBy === 'none') userReadBy = 'events';
  return { server: client.name, actions, read, write, userReadBy };
}

/** Sends the probe `UserEvent` and waits for it: `granted`, `missing`, or `unknown` if refused. */
async function probeUserRead(
  client: AmiPermissionSource,
  timeoutMs: number,
  actionOptions: { timeoutMs?: number },
): Promise<AmiAccess> {
  const token = randomBytes(8).toString('hex');
  let timer: NodeJS.Timeout | undefined;
  let onEvent: ((event: AmiEvent) => void) | undefined;
  const back = new Promise<boolean>((resolve) => {
    onEvent = (event: AmiEvent) => {
      if (
        event.Event === 'UserEvent' &&
        field(event, 'UserEvent') === PROBE_USER_EVENT &&
        field(event, 'Probe') === token
      ) {
        resolve(true);
      }
    };
    client.on('event', onEvent);
  });
  try {
    await client.action(
      { Action: 'UserEvent', UserEvent: PROBE_USER_EVENT, Probe: token },
      actionOptions,
    );
  } catch {
    if (onEvent) client.off('event', onEvent);
    return 'unknown';
  }
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
    // A probe left waiting never holds the process up (e.g. at a shutdown right after login).
    timer.unref?.();
  });
  try {
    return (await Promise.race([back, timedOut])) ? 'granted' : 'missing';
  } finally {
    clearTimeout(timer);
    if (onEvent) client.off('event', onEvent);
  }
}
