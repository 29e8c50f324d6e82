import type { Command } from 'commander'
import { ok } from '../client/index.js'
import { clientFor } from './context.js'
import { printJson } from './output.js'

/** `octet mailbox` and `octet mailbox collect`. */
export function registerMailbox (program: Command): void {
  const mailbox = program.command('mailbox').description('offline delivery: what this node holds for others, and fetching what others hold for it')
  mailbox.command('status', { isDefault: true })
    .description('sealed envelopes held here for offline peers, and their size')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const { holding } = ok(await client.GET('/v1/mailbox'))
      if (json) return printJson(holding)
      process.stdout.write(`holding ${holding.envelopes} sealed envelope(s) for ${holding.recipients} offline peer(s), ${formatBytes(holding.bytes)}\n`)
    })
  mailbox.command('collect')
    .description('fetch now what the mailbox peers near this node hold for it')
    .option('--json', 'print JSON')
    .action(async (_o, command: Command) => {
      const { client, json } = await clientFor(command)
      const report = ok(await client.POST('/v1/mailbox/collect'))
      if (json) return printJson(report)
      process.stdout.write(`asked ${report.mailboxes} mailbox peer(s): ${report.fetched} envelope(s), ${report.accepted} new message(s)\n`)
    })
}

function formatBytes (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}
