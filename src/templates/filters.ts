// The template filters: Mustache sections over a fixed set of functions. The inner text is
// rendered first, then filtered; what a filter returns is a new string (base64 of "user:pass" is in
// no mask yet), so main registers each filter output that holds a secret before a file is written.
// Text is taken as UTF-8: a lone surrogate becomes U+FFFD, as it would in the file.

export const FILTERS = {
  /** Standard base64, padded, of the UTF-8 text (.npmrc `_auth`, kubeconfig `*-data` fields). */
  base64: (text: string): string => Buffer.from(text, 'utf8').toString('base64'),
  /** The text as the content of a JSON string, without the surrounding quotes. */
  json: (text: string): string => JSON.stringify(wellFormed(text)).slice(1, -1),
  /** encodeURIComponent of the text (a password in a URL's user info or query). */
  url: (text: string): string => encodeURIComponent(wellFormed(text)),
} as const;

export type FilterName = keyof typeof FILTERS;

/** The filters' names, for messages. */
export const FILTER_NAMES = Object.keys(FILTERS) as FilterName[];

export function isFilter(name: string): name is FilterName {
  return (FILTER_NAMES as string[]).includes(name);
}

/** The text as UTF-8 would carry it (encodeURIComponent throws on a lone surrogate; JSON would keep it). */
function wellFormed(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}
