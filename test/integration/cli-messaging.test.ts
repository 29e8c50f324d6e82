import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'

/** The messaging CLI against real daemons, as a person would use it. */
describe('octet send / inbox / contacts / safety / chat', () => {
  const cleanup = new Cleanup()
  let a: DaemonProcess
  let c: DaemonProcess
  const cli = async (node: DaemonProcess, ...args: string[]) => await runCli(['--data-dir', node.options.dataDir, ...args])

  beforeAll(async () => {
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    c = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
  })
  afterAll(async () => { await cleanup.run() })

  it('sends by PeerId and waits for delivery; the recipient sees a contact request in its inbox', async () => {
    const sent = await cli(a, 'send', '--wait', c.info.peerId, 'hello', 'from', 'the', 'cli')
    expect(sent.stderr).toBe('')
    expect(sent.code).toBe(0)
    expect(sent.stdout).toMatch(/^[0-9a-f]{32} delivered\n$/)

    const inbox = await cli(c, 'inbox')
    expect(inbox.code).toBe(0)
    expect(inbox.stdout).toContain('contact request')
    expect(inbox.stdout).toContain('hello from the cli')
  })

  it('names a contact, sends by name, accepts a request and shows the same safety number on both sides', async () => {
    expect((await cli(a, 'contacts', 'add', c.info.peerId, 'carol')).code).toBe(0)
    const byName = await cli(a, 'send', '--wait', 'carol', 'by name')
    expect(byName.stdout).toMatch(/delivered/)

    const accepted = await cli(c, 'contacts', 'accept', a.info.peerId)
    expect(accepted.stdout).toContain('accepted')
    const list = await cli(c, 'contacts', '--json')
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ peerId: a.info.peerId, state: 'accepted', identity: 'trusted' })])

    const safetyA = await cli(a, 'safety', 'carol')
    const safetyC = await cli(c, 'safety', a.info.peerId)
    expect(safetyA.code).toBe(0)
    expect(safetyA.stdout.trim()).toMatch(/^(\d{5} ){11}\d{5}$/)
    expect(safetyA.stdout).toBe(safetyC.stdout)
  })

  it('refuses an unknown name and a bad PeerId with one clear line', async () => {
    const unknown = await cli(a, 'send', 'nobody-by-that-name', 'x')
    expect(unknown.code).not.toBe(0)
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1)
    expect(unknown.stderr).toMatch(/^octet: .*neither a PeerId nor a contact name/)

    // refused by the API: its message and code on one line, exit 1 (not a crash's 70)
    const bad = await cli(a, 'contacts', 'add', 'not-a-peer-id', 'x')
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/^octet: .+ \((BAD_REQUEST|INVALID_PEER_ID)\)\n$/)
  })

  it('chat shows incoming messages live and sends typed lines', async () => {
    const chat = spawn(process.execPath, [CLI, '--data-dir', c.options.dataDir, 'chat', a.info.peerId], { stdio: ['pipe', 'pipe', 'pipe'] })
    cleanup.add(async () => { if (chat.exitCode == null) { chat.kill(); await once(chat, 'exit') } })
    let output = ''
    chat.stdout.on('data', (d: Buffer) => { output += d.toString() })
    await waitFor(async () => output.includes('type to send') ? true : undefined, { what: 'chat prompt' })
    // the prompt comes after the event stream is open: a message sent now must show up live
    const live = `live ${Date.now()}`
    expect((await cli(a, 'send', c.info.peerId, live)).code).toBe(0)
    await waitFor(async () => output.includes(live) ? true : undefined, { what: 'live message in chat' })

    chat.stdin.write('typed in chat\n')
    const history = await waitFor(async () => {
      const { body } = await a.api<{ messages: Array<{ text: string }> }>('GET', `/v1/conversations/${c.info.peerId}/messages`)
      return body.messages.some(m => m.text === 'typed in chat') ? body.messages : undefined
    }, { what: 'chat line at A' })
    expect(history.filter(m => m.text === 'typed in chat')).toHaveLength(1)
    chat.stdin.write('/quit\n')
    const [code] = await once(chat, 'exit') as [number]
    expect(code).toBe(0)
  })

  it('runs a group from the CLI: create, invite, accept, remove', async () => {
    const created = await cli(a, 'groups', 'create', 'cli crew')
    expect(created.code).toBe(0)
    const groupId = created.stdout.slice(0, 32)
    expect(groupId).toMatch(/^[0-9a-f]{32}$/)

    const invited = await cli(a, 'groups', 'invite', 'cli crew', c.info.peerId)
    expect(invited.stderr).toBe('')
    expect(invited.stdout).toBe(`invited ${c.info.peerId} to cli crew; it is added when it accepts\n`)
    await waitFor(async () => (await cli(c, 'groups', 'list')).stdout.includes(groupId) ? true : undefined, { what: 'the invite at C' })
    expect((await cli(c, 'groups', 'accept', groupId)).code).toBe(0)
    const joined = await waitFor(async () => {
      const shown = JSON.parse((await cli(a, 'groups', 'show', groupId, '--json')).stdout) as { members: string[] }
      return shown.members.includes(c.info.peerId) ? shown : undefined
    }, { what: 'C a member' })
    expect(joined.members).toHaveLength(2)

    const removed = await cli(a, 'groups', 'remove', groupId, c.info.peerId)
    expect(removed.stderr).toBe('')
    expect(removed.stdout).toMatch(new RegExp(`^removed ${c.info.peerId} from cli crew \\(version \\d+, key epoch \\d+\\)\n$`))
    const after = JSON.parse((await cli(a, 'groups', 'show', groupId, '--json')).stdout) as { members: string[] }
    expect(after.members).toEqual([a.info.peerId])
  })
})
