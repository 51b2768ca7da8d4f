/**
 * The XiVO bus conventions (seed `shared/seeds/003_*.txt`, "Events"): the envelope, the
 * routing keys, the status events Switchboard derives from AMI, the service
 * (de)registration events, and the CTI-client events (schemas + builders for the HTTP
 * route). Plus Switchboard's extension: call events on `call.<event>`.
 *
 * Every builder returns a {@link Routed} pair `{routingKey, message}` ready for
 * `bus.publish(routingKey, message)`; none of them publishes.
 */
import Type, { type Static, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import type { AmiEvent } from '../ami/message.ts';
import type { BusMessage } from './bus.ts';

/** A message and the routing key to publish it with. */
export interface Routed<D = unknown> {
  routingKey: string;
  message: BusMessage<D>;
}

/**
 * The XiVO envelope `{name, origin_uuid, data}` (seed, "Events"). `originUuid` is the
 * configured UUID of this Switchboard instance.
 */
export function envelope<D>(name: string, originUuid: string, data: D): BusMessage<D> {
  return { name, origin_uuid: originUuid, data };
}

// ---------------------------------------------------------------------------------------
// AMI events (seed, "AMI events")

/**
 * Every AMI event on `ami.<EventName>`; `name` is the event name and `data` the event's
 * fields exactly as received (including `Event` itself, as XiVO does; repeated keys keep
 * their array of values).
 * @throws TypeError when the event has no usable `Event` name (empty, or containing `.`,
 * which would change the routing key's word count).
 */
export function amiEventMessage(event: AmiEvent, originUuid: string): Routed<AmiEvent> {
  const name = event.Event;
  if (typeof name !== 'string' || name === '' || !/^[A-Za-z0-9_\-:@+=/~]+$/.test(name)) {
    throw new TypeError(`AMI event has no publishable Event name: ${JSON.stringify(name)}`);
  }
  return { routingKey: `ami.${name}`, message: envelope(name, originUuid, event) };
}

// ---------------------------------------------------------------------------------------
// Call events (Switchboard extension)

/** A call event as produced by `src/calls/` (conformance `SCHEMA.md` line shape). */
export type CallEventLike = { event: string } & Record<string, unknown>;

/**
 * **Switchboard extension.** A call event on `call.<event>` (e.g. `call.b_dial`,
 * `call.hangup`). `name` is the event kind (same as `data.event`); `data` is the call event
 * in the conformance schema's shape, plus `server` (the name of the Asterisk server it
 * came from) when `server` is given: with several Asterisk servers the same uniqueid
 * prefix may otherwise be ambiguous. No other key is added.
 * @throws TypeError when `event.event` is not a lowercase word (`[a-z0-9_]+`).
 */
export function callEventMessage<E extends CallEventLike>(
  event: E,
  originUuid: string,
  server?: string,
): Routed<E & { server?: string }> {
  const kind = event.event;
  if (typeof kind !== 'string' || !/^[a-z0-9_]+$/.test(kind)) {
    throw new TypeError(`call event has an invalid event kind: ${JSON.stringify(kind)}`);
  }
  const data = server === undefined ? event : { ...event, server };
  return { routingKey: `call.${kind}`, message: envelope(kind, originUuid, data) };
}

// ---------------------------------------------------------------------------------------
// Status events derived from AMI (seed, "agent_status_update", "endpoint_status_update")

/** `data` of `agent_status_update` (seed): agent_id integer, xivo_id uuid, status string. */
export interface AgentStatusData {
  agent_id: number;
  xivo_id: string;
  status: 'logged_in' | 'logged_out';
}

/** `data` of `endpoint_status_update` (seed): endpoint_id integer, xivo_id, status integer. */
export interface EndpointStatusData {
  endpoint_id: number;
  xivo_id: string;
  status: number;
}

/** Options of {@link statusEventsFromAmi}. */
export interface StatusMappingOptions {
  /** UUID of this Switchboard instance: `origin_uuid` of the envelopes. */
  originUuid: string;
  /** The `xivo_id` to report. Default: `originUuid`. */
  xivoId?: string;
  /**
   * Maps the AMI `Agent` field (app_agent_pool's agent id, the agents.conf section name,
   * e.g. `1001`) to the integer `agent_id`. Default {@link defaultAgentId}. Returning
   * `undefined` skips the event.
   */
  agentId?: (agent: string) => number | undefined;
  /**
   * Maps the AMI `Device` field (e.g. `PJSIP/1001`) to the integer `endpoint_id`. Default
   * {@link defaultEndpointId}. Returning `undefined` skips the event.
   */
  endpointId?: (device: string) => number | undefined;
}

/**
 * Default agent id mapping: the `Agent` value, without an `Agent/` prefix, when it is a
 * decimal integer (`1001`, `Agent/1001` → 1001); otherwise `undefined`.
 */
export function defaultAgentId(agent: string): number | undefined {
  const m = /^(?:Agent\/)?(\d{1,15})$/.exec(agent);
  return m === null ? undefined : Number(m[1]);
}

/**
 * Default endpoint id mapping, for phone devices only: `<TECH>/<digits>` with TECH one of
 * PJSIP, SIP, IAX2, DAHDI, SCCP (`PJSIP/1001` → 1001). Other devices (`Queue:`, `Custom:`,
 * `Local/`, `PJSIP/alice`) give `undefined` and no event.
 */
export function defaultEndpointId(device: string): number | undefined {
  const m = /^(?:PJSIP|SIP|IAX2|DAHDI|SCCP)\/(\d{1,15})$/i.exec(device);
  return m === null ? undefined : Number(m[1]);
}

/**
 * Asterisk device state names (AMI `DeviceStateChange` `State`) to the extension (hint)
 * state integers the seed's `endpoint_status_update.status` carries ("based on asterisk
 * hints"), exactly as Asterisk's `ast_devstate_to_extenstate()` (main/pbx.c) maps them:
 * `NOT_INUSE`/`UNKNOWN` 0 (idle), `INUSE` 1, `BUSY` 2, `UNAVAILABLE`/`INVALID` 4,
 * `RINGING` 8, `RINGINUSE` 9 (in use + ringing), `ONHOLD` 16.
 */
export const DEVICE_STATE_TO_HINT_STATUS: Readonly<Record<string, number>> = Object.freeze({
  NOT_INUSE: 0,
  UNKNOWN: 0,
  INUSE: 1,
  BUSY: 2,
  UNAVAILABLE: 4,
  INVALID: 4,
  RINGING: 8,
  RINGINUSE: 9,
  ONHOLD: 16,
});

function firstValue(event: AmiEvent, key: string): string | undefined {
  const v = event[key];
  return typeof v === 'string' ? v : v?.[0];
}

/**
 * The XiVO status events an AMI event implies (zero or one):
 *
 * - `AgentLogin` → `agent_status_update` on `status.agent`, status `logged_in`;
 *   `AgentLogoff` → status `logged_out` (Asterisk app_agent_pool events; `Agent` → agent_id).
 *   Queue member pause (`QueueMemberPause`) is deliberately **not** mapped: the seed defines
 *   agent_status_update for login/logout only; pauses stay available as `ami.QueueMemberPause`.
 * - `DeviceStateChange` → `endpoint_status_update` on `status.endpoint`, with `status` from
 *   {@link DEVICE_STATE_TO_HINT_STATUS}; unknown state names and non-phone devices give
 *   nothing.
 */
export function statusEventsFromAmi(
  event: AmiEvent,
  options: StatusMappingOptions,
): Routed<AgentStatusData | EndpointStatusData>[] {
  const xivoId = options.xivoId ?? options.originUuid;
  switch (event.Event) {
    case 'AgentLogin':
    case 'AgentLogoff': {
      const agent = firstValue(event, 'Agent');
      if (agent === undefined) return [];
      const agentId = (options.agentId ?? defaultAgentId)(agent);
      if (agentId === undefined) return [];
      const data: AgentStatusData = {
        agent_id: agentId,
        xivo_id: xivoId,
        status: event.Event === 'AgentLogin' ? 'logged_in' : 'logged_out',
      };
      return [
        {
          routingKey: 'status.agent',
          message: envelope('agent_status_update', options.originUuid, data),
        },
      ];
    }
    case 'DeviceStateChange': {
      const device = firstValue(event, 'Device');
      const state = firstValue(event, 'State');
      if (device === undefined || state === undefined) return [];
      const status = DEVICE_STATE_TO_HINT_STATUS[state.toUpperCase()];
      if (status === undefined) return [];
      const endpointId = (options.endpointId ?? defaultEndpointId)(device);
      if (endpointId === undefined) return [];
      const data: EndpointStatusData = { endpoint_id: endpointId, xivo_id: xivoId, status };
      return [
        {
          routingKey: 'status.endpoint',
          message: envelope('endpoint_status_update', options.originUuid, data),
        },
      ];
    }
    default:
      return [];
  }
}

/**
 * Everything Switchboard publishes for one AMI event: `ami.<EventName>` first, then the
 * status events it implies ({@link statusEventsFromAmi}).
 */
export function messagesForAmiEvent(event: AmiEvent, options: StatusMappingOptions): Routed[] {
  return [amiEventMessage(event, options.originUuid), ...statusEventsFromAmi(event, options)];
}

// ---------------------------------------------------------------------------------------
// Service (de)registration (seed, "service_registered_event", "service_deregistered_event")

/** `data` of `service_registered_event` (seed): 5 keys. */
export interface ServiceRegisteredData {
  service_name: string;
  service_id: string;
  address: string;
  port: number;
  tags: string[];
}

/** `data` of `service_deregistered_event` (seed): 3 keys. */
export type ServiceDeregisteredData = Omit<ServiceRegisteredData, 'address' | 'port'>;

/** The service name Switchboard registers as. */
export const SERVICE_NAME = 'switchboard';

/**
 * `service_registered_event` on `service.registered.switchboard`, sent when the service
 * starts. `serviceId` identifies this instance (XiVO uses the Consul id; Switchboard uses
 * its instance UUID by default), `address`/`port` are what it advertises (the HTTP
 * listener). Tags default to `['switchboard', originUuid]`.
 */
export function serviceRegisteredMessage(options: {
  originUuid: string;
  serviceId?: string;
  address: string;
  port: number;
  tags?: string[];
}): Routed<ServiceRegisteredData> {
  const data: ServiceRegisteredData = {
    service_name: SERVICE_NAME,
    service_id: options.serviceId ?? options.originUuid,
    address: options.address,
    port: options.port,
    tags: options.tags ?? [SERVICE_NAME, options.originUuid],
  };
  return {
    routingKey: `service.registered.${SERVICE_NAME}`,
    message: envelope('service_registered_event', options.originUuid, data),
  };
}

/**
 * `service_deregistered_event` on `service.deregistered.switchboard`, sent when the
 * service stops. Same `serviceId`/`tags` defaults as {@link serviceRegisteredMessage}.
 */
export function serviceDeregisteredMessage(options: {
  originUuid: string;
  serviceId?: string;
  tags?: string[];
}): Routed<ServiceDeregisteredData> {
  const data: ServiceDeregisteredData = {
    service_name: SERVICE_NAME,
    service_id: options.serviceId ?? options.originUuid,
    tags: options.tags ?? [SERVICE_NAME, options.originUuid],
  };
  return {
    routingKey: `service.deregistered.${SERVICE_NAME}`,
    message: envelope('service_deregistered_event', options.originUuid, data),
  };
}

// ---------------------------------------------------------------------------------------
// CTI-client events (seed, "call_form_result", "user_status_update", "chat_message_event")

/**
 * A XiVO UUID as it appears in `xivo_id` and in chat routing keys: 8-4-4-4-12 hex digits.
 * Required so that it is a single routing-key word.
 */
export const XivoUuid = Type.String({
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
  description: 'XiVO UUID',
});

/**
 * `data` of `call_form_result` (seed): `user_id` integer (the user who saved the form),
 * `variables` the content of the form (an object; values are not constrained, XiVO clients
 * send strings).
 */
export const CallFormResultData = Type.Object(
  {
    user_id: Type.Integer({ minimum: 0 }),
    variables: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
/** Type of {@link CallFormResultData}. */
export type CallFormResultData = Static<typeof CallFormResultData>;

/**
 * `data` of `user_status_update` (seed): `user_id` integer, `xivo_id` uuid, `status` string
 * (the CTI presence, e.g. `busy`).
 */
export const UserStatusUpdateData = Type.Object(
  {
    user_id: Type.Integer({ minimum: 0 }),
    xivo_id: XivoUuid,
    status: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);
/** Type of {@link UserStatusUpdateData}. */
export type UserStatusUpdateData = Static<typeof UserStatusUpdateData>;

/** `[xivo_uuid, user_id]`: a user on a XiVO (seed, chat_message_event `to`/`from`). */
export const XivoUserRef = Type.Tuple([XivoUuid, Type.Integer({ minimum: 0 })]);

/**
 * `data` of `chat_message_event` (seed): `alias` (the chatter's nickname), `to` and
 * `from` as `[xivo_uuid, user_id]`, `msg` the message. The seed's key list says `alice`
 * but its example (the JSON clients send) says `alias`; Switchboard follows the example.
 */
export const ChatMessageEventData = Type.Object(
  {
    alias: Type.String(),
    to: XivoUserRef,
    from: XivoUserRef,
    msg: Type.String(),
  },
  { additionalProperties: false },
);
/** Type of {@link ChatMessageEventData}. */
export type ChatMessageEventData = Static<typeof ChatMessageEventData>;

/** The CTI events a client may publish through the HTTP API, by event name. */
export const CTI_EVENTS = {
  call_form_result: {
    schema: CallFormResultData,
    routingKey: (_data: CallFormResultData) => 'call_form_result',
  },
  user_status_update: {
    schema: UserStatusUpdateData,
    routingKey: (_data: UserStatusUpdateData) => 'status.user',
  },
  chat_message_event: {
    schema: ChatMessageEventData,
    routingKey: (data: ChatMessageEventData) => `chat.message.${data.to[0]}.${data.to[1]}`,
  },
} as const;

/** Name of a CTI event ({@link CTI_EVENTS}). */
export type CtiEventName = keyof typeof CTI_EVENTS;

/** Result of {@link buildCtiEvent}: the routed message, or the reasons it is invalid. */
export type CtiBuildResult = ({ ok: true } & Routed) | { ok: false; errors: string[] };

/**
 * Validates `body` (the event's `data`, exactly as in the seed) against the schema of
 * `name` and builds the envelope and routing key (`call_form_result`, `status.user`,
 * `chat.message.<to xivo uuid>.<to user id>`). Never throws: an unknown name or an invalid
 * body gives `{ok: false, errors}` with one human-readable reason per problem
 * (`/user_id: must be integer`), suitable for a 400 response.
 */
export function buildCtiEvent(name: string, body: unknown, originUuid: string): CtiBuildResult {
  if (!Object.hasOwn(CTI_EVENTS, name)) {
    return {
      ok: false,
      errors: [
        `unknown event ${JSON.stringify(name)} (expected one of ${Object.keys(CTI_EVENTS).join(', ')})`,
      ],
    };
  }
  const spec = CTI_EVENTS[name as CtiEventName];
  const errors = schemaErrors(spec.schema, body);
  if (errors.length > 0) return { ok: false, errors };
  const routingKey = (spec.routingKey as (data: unknown) => string)(body);
  return { ok: true, routingKey, message: envelope(name, originUuid, body) };
}

function schemaErrors(schema: TSchema, value: unknown): string[] {
  if (Value.Check(schema, value)) return [];
  const out: string[] = [];
  for (const error of Value.Errors(schema, value)) {
    if (error.keyword === 'boolean') continue; // duplicates 'additionalProperties'
    const e = error as { instancePath: string; message: string; params?: Record<string, unknown> };
    let reason = `${e.instancePath === '' ? '/' : e.instancePath}: ${e.message}`;
    const extra = e.params?.additionalProperties ?? e.params?.requiredProperties;
    if (Array.isArray(extra)) reason += ` (${extra.join(', ')})`;
    out.push(reason);
  }
  return out.length > 0 ? out : ['/: invalid'];
}

// ---------------------------------------------------------------------------------------
// Wiring

/** Options of {@link XivoPublisher}. */
export interface XivoPublisherOptions extends StatusMappingOptions {
  /** Publish `ami.<EventName>` for every AMI event. Default true. */
  amiEvents?: boolean;
  /** Publish the status events derived from AMI. Default true. */
  statusEvents?: boolean;
}

/** Anything with a `publish(routingKey, message)` (a `Bus`). */
export interface Publisher {
  publish(routingKey: string, message: BusMessage): boolean;
}

/**
 * Publishes Switchboard's events on a bus with the XiVO conventions: the glue the service
 * uses (AMI client → `ami()`, call engine → `call()`, start/stop → `registered()` /
 * `deregistered()`, CTI HTTP route → `cti()`). Every method returns how many messages were
 * accepted by the bus.
 */
export class XivoPublisher {
  readonly #bus: Publisher;
  readonly #options: XivoPublisherOptions;

  /** @param bus the bus to publish on; @param options UUIDs and mappings. */
  constructor(bus: Publisher, options: XivoPublisherOptions) {
    this.#bus = bus;
    this.#options = options;
  }

  #send(routed: Routed[]): number {
    let n = 0;
    for (const r of routed) if (this.#bus.publish(r.routingKey, r.message)) n++;
    return n;
  }

  /** An AMI event: `ami.<EventName>` plus the status events it implies. */
  ami(event: AmiEvent): number {
    const out: Routed[] = [];
    if (this.#options.amiEvents !== false)
      out.push(amiEventMessage(event, this.#options.originUuid));
    if (this.#options.statusEvents !== false)
      out.push(...statusEventsFromAmi(event, this.#options));
    return this.#send(out);
  }

  /** A call event on `call.<event>`, tagged with `server` when given. */
  call(event: CallEventLike, server?: string): number {
    return this.#send([callEventMessage(event, this.#options.originUuid, server)]);
  }

  /** `service_registered_event` (service start). */
  registered(advertised: {
    address: string;
    port: number;
    serviceId?: string;
    tags?: string[];
  }): number {
    return this.#send([
      serviceRegisteredMessage({ originUuid: this.#options.originUuid, ...advertised }),
    ]);
  }

  /** `service_deregistered_event` (service stop). */
  deregistered(advertised: { serviceId?: string; tags?: string[] } = {}): number {
    return this.#send([
      serviceDeregisteredMessage({ originUuid: this.#options.originUuid, ...advertised }),
    ]);
  }

  /**
   * A CTI-client event: validates and publishes, or returns the reasons (for a 400).
   * `published` is false when the bus dropped the message.
   */
  cti(
    name: string,
    body: unknown,
  ): { ok: true; routingKey: string; published: boolean } | { ok: false; errors: string[] } {
    const built = buildCtiEvent(name, body, this.#options.originUuid);
    if (!built.ok) return built;
    return {
      ok: true,
      routingKey: built.routingKey,
      published: this.#bus.publish(built.routingKey, built.message),
    };
  }
}
