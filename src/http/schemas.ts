/**
 * What every route declares (OpenAPI 3.1 through `@fastify/swagger`): its request (body,
 * query, params as TypeBox schemas), every response including the errors, an `operationId`
 * and its security. This module holds the shared parts:
 *
 * - {@link SECURITY_SCHEMES}: the credentials Switchboard's access rules read
 *   (`src/http/auth.ts`), the push API's account check and Twilio's signature;
 * - {@link ACCESS_RULE_SECURITY} / {@link NO_SECURITY}: a route's `security`;
 * - {@link errorResponses}: one schema for every error status a route may answer;
 * - {@link seedValidatorCompiler} / {@link seedSchemaErrorFormatter}: how the seed APIs'
 *   plugins validate: TypeBox's own checker, a form schema for form-encoded and multipart
 *   bodies (every value text: integers as digit patterns) and a JSON schema for JSON, the
 *   request left as the client sent it, the first problem as `<field>: <reason>` (the
 *   reason the schema declares in `errorMessage`), rendered by the plugin's error formatter
 *   in its seed's shape (`src/http/errors.ts`).
 *
 * Responses of the routes that existed before their schemas are serialized as before
 * ({@link plainSerializer}): the response schemas describe the answers, they never drop or
 * retype a field.
 */
import type { FastifySchemaCompiler } from 'fastify';
import Type, { type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/**
 * A serializer compiler that serializes as a route without a response schema does
 * (`JSON.stringify`): for routes whose response schemas document the seed's answers without
 * ever dropping or retyping a field (`app.setSerializerCompiler(plainSerializer)` in the
 * plugin, or `serializerCompiler` on a route).
 */
export const plainSerializer = () => (data: unknown) => JSON.stringify(data);

/** `components.securitySchemes` of the OpenAPI document. */
export const SECURITY_SCHEMES = {
  bearerToken: {
    type: 'http',
    scheme: 'bearer',
    description:
      'A token of `auth.tokens` (its `modules` list limits where). Clients from loopback ' +
      '(`auth.allowLoopback`) and from `auth.allowNetworks` need no credential.',
  },
  basicUser: {
    type: 'http',
    scheme: 'basic',
    description: 'A user of `auth.users` (its `modules` list limits where).',
  },
  pushAccount: {
    type: 'http',
    scheme: 'basic',
    description:
      "The app's account credential, checked for the body's `sip_user_id` by " +
      '`push.accounts` (the original middleware: any `Authorization` scheme is passed on).',
  },
  twilioSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Twilio-Signature',
    description: "Twilio's request signature with `callout.twilio.authToken`.",
  },
} as const;

/** Routes behind `createAccessRule`: a token, a Basic user, or none from an allowed network. */
export const ACCESS_RULE_SECURITY: ReadonlyArray<Record<string, string[]>> = [
  { bearerToken: [] },
  { basicUser: [] },
  {},
];

/** Routes that take no credential (open, or allowed by network only: said in their description). */
export const NO_SECURITY: ReadonlyArray<Record<string, string[]>> = [];

/** What each error status means, for the response descriptions. */
const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Bad input (the message names the field)',
  401: 'Credential missing or wrong',
  403: 'Refused: not allowed here, or a browser cross-site request',
  404: 'Not found',
  408: 'The request body did not arrive in time',
  409: 'Conflict',
  413: 'Request body too large',
  415: 'Unsupported content type',
  502: 'An upstream service failed',
  503: 'Unavailable now; retry later (see Retry-After)',
};

/**
 * Response schemas for error statuses, all in one shape (`schema`, a plugin's seed shape),
 * each with its description. `contentType` set: declared under that media type (text bodies).
 */
export function errorResponses(
  schema: TSchema,
  statuses: readonly number[],
  contentType?: string,
): Record<number, unknown> {
  const out: Record<number, unknown> = {};
  for (const status of statuses) {
    const description = ERROR_DESCRIPTIONS[status] ?? 'Error';
    out[status] =
      contentType === undefined
        ? { ...schema, description }
        : { description, content: { [contentType]: { schema } } };
  }
  return out;
}

/** Switchboard's own error shape (`defaultErrorFormatter`). */
export const DefaultErrorBody = Type.Object(
  {
    error: Type.String({ description: 'machine-readable code, e.g. bad_request' }),
    message: Type.String(),
    statusCode: Type.Integer(),
    field: Type.Optional(Type.String({ description: 'the field at fault' })),
    errors: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: true },
);

/** A text value of a form-encoded, multipart or JSON body (a JSON number is read as its text). */
export const TextField = (options: { description?: string; maxLength?: number } = {}) =>
  Type.Union([Type.String(options), Type.Number()], {
    ...(options.description === undefined ? {} : { description: options.description }),
  });

/** A validation error as TypeBox (and Ajv) report it. */
interface SchemaError {
  keyword?: string;
  instancePath?: string;
  schemaPath?: string;
  message?: string;
  params?: unknown;
}

/**
 * The `errorMessage` (the ajv-errors convention: a string, or one per keyword) of the schema
 * node at `schemaPath` (`#/properties/frequency/anyOf/0`) or, failing that, of its nearest
 * ancestor with one.
 */
function declaredMessage(root: unknown, schemaPath: string, keyword: string): string | undefined {
  const steps = schemaPath
    .replace(/^#\/?/, '')
    .split('/')
    .filter((step) => step !== '')
    .map((step) => step.replaceAll('~1', '/').replaceAll('~0', '~'));
  const nodes: unknown[] = [root];
  let node = root;
  for (const step of steps) {
    if (node === null || typeof node !== 'object') break;
    node = (node as Record<string, unknown>)[step];
    nodes.push(node);
  }
  for (const candidate of nodes.reverse()) {
    if (candidate === null || typeof candidate !== 'object') continue;
    const declared = (candidate as { errorMessage?: unknown }).errorMessage;
    if (typeof declared === 'string') return declared;
    if (declared !== null && typeof declared === 'object') {
      const forKeyword = (declared as Record<string, unknown>)[keyword];
      if (typeof forKeyword === 'string') return forKeyword;
    }
  }
  return undefined;
}

/**
 * Formats the first validation problem as `<field>: <reason>` (`frequency: must be an
 * integer 1–10`): the reason the schema declares for it (`errorMessage`, see
 * {@link declaredMessage}), else `is required` for a missing property, else the checker's.
 * `schema` is the schema that failed (the seed validator passes it; Fastify's own
 * formatter call does not).
 */
export function formatSchemaError(
  errors: readonly SchemaError[],
  dataVar: string,
  schema?: unknown,
): Error {
  const first = errors[0];
  const params = (first?.params ?? {}) as {
    requiredProperties?: unknown;
    missingProperty?: unknown;
  };
  const missing = Array.isArray(params.requiredProperties)
    ? params.requiredProperties[0]
    : params.missingProperty;
  const path = [
    ...(first?.instancePath ?? '').split('/').filter((p) => p !== ''),
    ...(missing === undefined ? [] : [String(missing)]),
  ];
  const field = path.length > 0 ? path.join('.') : dataVar;
  const declared =
    schema === undefined || first?.schemaPath === undefined
      ? undefined
      : declaredMessage(schema, first.schemaPath, first.keyword ?? '');
  const reason =
    missing !== undefined ? 'is required' : (declared ?? first?.message ?? 'is invalid');
  return new Error(`${field}: ${reason}`);
}

/** Fastify's `schemaErrorFormatter` for the seed plugins (messages made by the validator). */
export function seedSchemaErrorFormatter(
  errors: ReadonlyArray<SchemaError>,
  dataVar: string,
): Error {
  const carried = (errors[0] as { formatted?: unknown } | undefined)?.formatted;
  if (typeof carried === 'string') return new Error(carried);
  return formatSchemaError(errors, dataVar);
}

/**
 * Validator compiler of the seed APIs' plugins (`app.setValidatorCompiler`): TypeBox's checker
 * on the value as the client sent it, nothing coerced or removed (the route reads the text
 * itself, e.g. keeping a leading zero). A form-encoded or multipart body is checked against
 * the route's form schema, which says what a form carries: text (an integer as a digit
 * pattern, a repeated name as an array); JSON bodies against the JSON schema, which also
 * takes numbers where the seed reads them as text. (Coercing a form value into a union's
 * numeric branch before the check would let an over-long run of digits pass a text field's
 * length.) A streamed multipart body (read by the route) is not checked here.
 */
export const seedValidatorCompiler: FastifySchemaCompiler<TSchema> = ({
  schema,
  httpPart,
  contentType,
}) => {
  const check = Compile(schema);
  const streamed = httpPart === 'body' && contentType === 'multipart/form-data';
  return (value: unknown) => {
    if (streamed && (value === undefined || value === null)) return { value };
    if (check.Check(value)) return { value };
    const errors = [...check.Errors(value)] as SchemaError[];
    // The message needs the schema (its `errorMessage`): made here, carried to the formatter.
    const formatted = formatSchemaError(errors, httpPart ?? 'body', schema).message;
    return { error: errors.map((e, i) => (i === 0 ? { ...e, formatted } : e)) as never };
  };
};
