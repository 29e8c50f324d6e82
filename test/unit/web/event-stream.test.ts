import { describe, expect, it } from 'vitest'
import { SseParser, type SseEvent } from '../../../web/src/event-stream.js'

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

describe('the web page\'s event stream parser', () => {
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
