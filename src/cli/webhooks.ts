import { InvalidArgumentError, type Command } from 'commander'
import { ok, type Answer } from '../client/index.js'
import { EVENT_TYPES, type OctetEventType } from '../messaging/events.js'
import { clientFor } from './context.js'
import { integerOption } from './options.js'
import { printJson, table } from './output.js'

type WebhookView = Answer<'getWebhook'>['webhook']

/** `--events a,b`: known event types, or commander's one-line error naming the unknown ones. */
function eventTypes (value: string): OctetEventType[] {
  const types = value.split(',').map(t => t.trim()).filter(t => t !== '')
  const unknown = types.filter(t => !(EVENT_TYPES as readonly string[]).includes(t))
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown event type ${unknown.join(', ')}; known: ${EVENT_TYPES.join(', ')}`)
  return types as OctetEventType[]
}

function describe (w: WebhookView): string {
  const problem = w.state === 'paused' || w.failures > 0 ? `, ${w.failures} failure(s) in a row, last: ${w.lastError ?? '?'}` : ''
  return `${w.id} ${w.state}, ${w.lag} event(s) behind${problem}`
}

/** `octet webhooks …`: URLs the daemon POSTs events to. */
export function registerWebhooks (program: Command): void {
  const webhooks = program.command('webhooks').description('push events to URLs by POST, signed (see the README, "Webhooks")')

  webhooks.command('list', { isDefault: true })
    .description('list webhooks, their state and lag')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const list = ok(await client.GET('/v1/webhooks')).webhooks
      if (json) return printJson(list)
      if (list.length === 0) {
        process.stdout.write('no webhooks; add one with `octet webhooks add <url>`\n')
        return
      }
      process.stdout.write(table(['ID', 'STATE', 'LAG', 'FAILURES', 'EVENTS', 'URL'], list.map(w => [w.id, w.state, String(w.lag), String(w.failures), w.events.length === 0 ? 'all' : w.events.join(','), w.url])) + '\n')
      for (const w of list) {
        if (w.lastError != null && w.failures > 0) process.stdout.write(`${w.id}: last error: ${w.lastError}\n`)
        if (w.missed != null) process.stdout.write(`${w.id}: missed events ${w.missed.from} to ${w.missed.to} (pruned before it got them)\n`)
      }
    })

  webhooks.command('add')
    .description('register a URL; prints its secret, which is shown only this once')
    .argument('<url>', 'an http: or https: URL')
    .option('--events <types>', 'comma-separated event types (message.received,message.status …); default: all', eventTypes)
    .option('--secret <secret>', 'the HMAC key (16 to 256 characters); default: a random one')
    .option('--after <id>', 'deliver the events after this id too (default: only new ones)', integerOption(0, Number.MAX_SAFE_INTEGER))
    .option('--json', 'print JSON')
    .action(async (url: string, options: { events?: OctetEventType[], secret?: string, after?: number }, command: Command) => {
      const { client, json } = await clientFor(command)
      const body = {
        url,
        ...(options.events != null ? { events: options.events } : {}),
        ...(options.secret != null ? { secret: options.secret } : {}),
        ...(options.after != null ? { after: options.after } : {})
      }
      const created = ok(await client.POST('/v1/webhooks', { body }))
      if (json) return printJson(created)
      process.stdout.write(`webhook ${created.webhook.id} → ${created.webhook.url}\nsecret: ${created.secret}\n(keep it: receivers check X-Octet-Signature with it; it is not shown again)\n`)
    })

  webhooks.command('remove')
    .description('remove a webhook')
    .argument('<id>')
    .action(async (id: string, _o, command: Command) => {
      const { client } = await clientFor(command)
      ok(await client.DELETE('/v1/webhooks/{id}', { params: { path: { id } } }))
      process.stdout.write(`webhook ${id} removed\n`)
    })

  webhooks.command('resume')
    .description('make a paused webhook active again; it tries the next event at once')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, _o, command: Command) => {
      const { client, json } = await clientFor(command)
      const { webhook } = ok(await client.POST('/v1/webhooks/{id}/resume', { params: { path: { id } } }))
      if (json) return printJson(webhook)
      process.stdout.write(describe(webhook) + '\n')
    })
}
