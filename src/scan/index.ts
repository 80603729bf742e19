// The leak-scan engine: patterns from secrets, a streaming multi-pattern matcher, containers opened
// while streaming, and the scan itself. No import side effects.
export { buildPatterns, BASE_ENCODINGS, DEFAULT_MIN_LENGTH } from './patterns.ts';
export { base64Embedded } from '../encodings.ts';
export type { BaseEncoding, Encoding, Pattern, PatternOptions, Secret } from './patterns.ts';
export { Matcher, MatchStream } from './matcher.ts';
export type { MatchCallback } from './matcher.ts';
export { DEFAULT_LIMITS } from './containers.ts';
export type { Limits } from './containers.ts';
export { scan, scanAll, globToRegExp } from './scanner.ts';
export type { Done, Finding, Progress, ScanEvent, ScanOptions } from './scanner.ts';
