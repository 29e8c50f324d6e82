/**
 * Named shapes of the API's answers, from the generated types alone: importable by code
 * that is not for Node (the web page's bundle), which must not pull the client's transports.
 */
import type { components, operations } from './schema.js'

type JsonBody<R> = R extends { content: { 'application/json': infer B } } ? B : never
/**
 * The JSON body of an operation's successful answer (200, 201 or 202), by `operationId`:
 * `Answer<'listContacts'>['contacts'][number]` is a contact as the API gives it.
 */
export type Answer<K extends keyof operations> = JsonBody<operations[K]['responses'][Extract<keyof operations[K]['responses'], 200 | 201 | 202>]>

/** One event of GET /v1/events (and of a webhook's POST), narrowed by its `type`. */
export type ApiEvent = components['schemas']['Event']
