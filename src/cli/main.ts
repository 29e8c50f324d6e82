import { Command, CommanderError } from 'commander'
import { isOctetError, errorMessage } from '../errors.js'
import { VERSION } from '../version.js'
import { cliError } from './client.js'
import { registerContacts } from './contacts.js'
import { registerDaemon } from './daemon.js'
import { EXIT_STATE_DAMAGED, registerDoctor } from './doctor.js'
import { registerGroups } from './groups.js'
import { registerMailbox } from './mailbox.js'
import { registerMessages } from './messages.js'
import { registerNodeInfo } from './node-info.js'
import { registerTestnet } from './testnet.js'
import { registerWebhooks } from './webhooks.js'
import { registerUi } from './ui.js'

export function buildProgram (): Command {
  const program = new Command()
    .name('octet')
    .description('a peer-to-peer messenger with no operator')
    .version(VERSION)
    .option('-d, --data-dir <dir>', 'data directory (env OCTET_DATA_DIR) [default: ~/.octet]')
    .showHelpAfterError('(run `octet --help` for usage)')
    .exitOverride()
  registerDaemon(program)
  registerNodeInfo(program)
  registerMessages(program)
  registerContacts(program)
  registerGroups(program)
  registerMailbox(program)
  registerWebhooks(program)
  registerTestnet(program)
  registerUi(program)
  registerDoctor(program)
  return program
}

/**
 * Every expected failure ends as one line on stderr and a non-zero exit:
 * users see what went wrong and what to do, not a stack trace.
 */
export async function main (argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (thrown) {
    const err = cliError(thrown)
    if (err instanceof CommanderError) {
      // commander already printed its message
      process.exitCode = err.exitCode
      return
    }
    process.stderr.write(`octet: ${errorMessage(err)}\n`)
    if (!isOctetError(err) && process.env.OCTET_DEBUG != null) process.stderr.write(`${String((err as Error).stack)}\n`)
    // damaged state gets an exit code of its own: a supervisor should not restart into it
    process.exitCode = isOctetError(err, 'STATE_DAMAGED') || isOctetError(err, 'STATE_MISMATCH') ? EXIT_STATE_DAMAGED : isOctetError(err) ? 1 : 70
  }
}

await main(process.argv)
