// The three filters, table-driven: what each makes of text a config file needs (a user:pass pair,
// a value with quotes, line breaks and non-ASCII), and that a lone surrogate cannot make one throw.
import { describe, expect, it } from 'vitest';
import { FILTER_NAMES, FILTERS, isFilter } from '../../../src/templates/filters.ts';

describe('FILTERS', () => {
  it.each([
    ['base64', 'user:pa$$', 'dXNlcjpwYSQk'],
    ['base64', 'é', 'w6k='],
    ['base64', '', ''],
    ['json', 'a"b\\c\nd\te', 'a\\"b\\\\c\\nd\\te'],
    ['json', 'é/<>', 'é/<>'],
    ['url', 'p@ss w/rd&x=1', 'p%40ss%20w%2Frd%26x%3D1'],
    ['url', "!'()*", "!'()*"],
    ['url', 'é', '%C3%A9'],
  ] as const)('%s(%j) is %j', (name, input, output) => {
    expect(FILTERS[name](input)).toBe(output);
  });

  it('json is JSON.stringify without the quotes, so it parses back inside a JSON string', () => {
    const text = 'line1\r\nline2 "quoted" \\ \u0001 \u2028';
    expect(JSON.parse(`"${FILTERS.json(text)}"`)).toBe(text);
  });

  it('takes text as UTF-8: a lone surrogate is U+FFFD, never an exception', () => {
    expect(FILTERS.url('a\ud800')).toBe('a%EF%BF%BD');
    expect(FILTERS.json('a\ud800')).toBe('a\ufffd');
    expect(FILTERS.base64('a\ud800')).toBe(Buffer.from('a\ufffd').toString('base64'));
  });

  it('knows exactly its three names', () => {
    expect(FILTER_NAMES).toEqual(['base64', 'json', 'url']);
    expect(['base64', 'json', 'url', 'upper', 'constructor', ''].map(isFilter)).toEqual([true, true, true, false, false, false]);
  });
});
