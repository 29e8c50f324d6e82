import { describe, expect, it } from 'vitest'
import { readSse, SseIdleError, SseParser, type SseEvent } from '../../../src/client/sse.js'

/** Everything the parser reports for `text` pushed in the given pieces. */
function parse (pieces: string[]): { events: SseEvent[], comments: string[] } {
  const events: SseEvent[] = []
  const comments: string[] = []
  const parser = new SseParser(e => events.push(e), c => comments.push(c))
  for (const piece of pieces) parser.push(piece)
  return { events, comments }
}

/** `text` cut at each of the given offsets. */
const cut = (text: string, at: number[]): string[] => [0, ...at, text.length].slice(1).map((end, i) => text.slice([0, ...at][i], end))

describe('the event stream parser (octet/client, the page, the CLI, the bridge)', () => {
  const stream = (eol: string): string => [
    ': octet events', '',
    'id: 7', 'event: message.sent', 'data: {"id":7}', '',
    ': keep-alive', '',
    'event: stream.closed', 'data: line one', 'data:line two', '',
    'id: 8', 'data', '', ''
  ].join(eol)
  const expected = {
    events: [
      { event: 'message.sent', data: '{"id":7}', id: '7' },
      // the id stays the last one seen, as EventSource's lastEventId does
      { event: 'stream.closed', data: 'line one\nline two', id: '7' },
      { event: 'message', data: '', id: '8' }
    ],
    comments: ['octet events', 'keep-alive']
  }

  it('reads event, data, id and comments with LF, CRLF and CR line ends', () => {
    for (const eol of ['\n', '\r\n', '\r']) expect(parse([stream(eol)])).toEqual(expected)
  })

  it('gives the same, cut into chunks anywhere (a CRLF split between two chunks included)', () => {
    for (const eol of ['\n', '\r\n', '\r']) {
      const text = stream(eol)
      for (let i = 1; i < text.length; i++) expect(parse(cut(text, [i]))).toEqual(expected)
      for (let i = 1; i + 3 < text.length; i += 5) expect(parse(cut(text, [i, i + 1, i + 3]))).toEqual(expected)
      expect(parse([...text])).toEqual(expected)
    }
    // a chunk ending in CR followed by one starting with LF is one line end, not a blank line between
    expect(parse(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual({ events: [{ event: 'message', data: 'a\nb' }], comments: [] })
  })

  it('dispatches nothing without data, nor an event left unterminated', () => {
    expect(parse(['event: x\n\n', 'data: half'])).toEqual({ events: [], comments: [] })
  })
})

describe('readSse: the events of a response body', () => {
  const body = (chunks: string[], keepOpen = false): ReadableStream<Uint8Array> => new ReadableStream({
    start (controller) {
      for (const chunk of chunks) controller.enqueue(new TextEncoder().encode(chunk))
      if (!keepOpen) controller.close()
    }
  })

  it('reads events however the bytes are cut, skipping comments', async () => {
    const text = ': octet events\n\nid: 1\nevent: group.message\ndata: {"a":1}\n\n: keep-alive\n\nid: 2\r\nevent: x\r\ndata: one\r\ndata: two\r\n\r\n'
    for (const size of [1, 3, 7, text.length]) {
      const chunks = text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? []
      const got = []
      for await (const message of readSse(body(chunks), 1_000)) got.push(message)
      expect(got).toEqual([{ id: '1', event: 'group.message', data: '{"a":1}' }, { id: '2', event: 'x', data: 'one\ntwo' }])
    }
  })

  it('gives up on a stream that brings nothing for the idle time', async () => {
    const reading = (async () => { for await (const message of readSse(body(['id: 1\ndata: x\n\n'], true), 100)) expect(message.id).toBe('1') })()
    await expect(reading).rejects.toBeInstanceOf(SseIdleError)
  })
})
