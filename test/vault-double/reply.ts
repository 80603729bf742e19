// Response shapes of the Vault HTTP API and the request context handed to every route.
import type { TlsInfo } from './cert.ts';
import { uuid } from './util.ts';

export interface AuthBlock {
  client_token: string;
  accessor: string;
  policies: string[];
  token_policies: string[];
  metadata: Record<string, string> | null;
  lease_duration: number;
  renewable: boolean;
  entity_id: string;
  token_type: 'service';
  orphan: boolean;
  mfa_requirement: null;
  num_uses: number;
}

export interface WrapInfo {
  token: string;
  accessor: string;
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

// https://developer.hashicorp.com/vault/api-docs#http-status-codes
// Every non-error JSON answer is this envelope (sdk/logical HTTPResponse, key order as Vault prints it).
export interface Envelope {
  request_id: string;
  lease_id: string;
  renewable: boolean;
  lease_duration: number;
  data: unknown;
  wrap_info: WrapInfo | null;
  warnings: string[] | null;
  auth: AuthBlock | null;
  mount_type: string;
}

export interface Reply {
  status: number;
  /** JSON body; undefined means no body (204). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** Logical operation Vault derives from the HTTP method (http/logical.go buildLogicalRequest). */
export type Operation = 'read' | 'list' | 'update' | 'delete' | 'patch';

export interface Ctx {
  requestId: string;
  method: string;
  op: Operation;
  /** Path after /v1/ as sent, without the query. */
  rawPath: string;
  /** Effective namespace ('' is the root namespace). */
  ns: string;
  /** Path relative to the namespace. */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
  contentType: string;
  token: string | undefined;
  /** Requested response-wrapping TTL in seconds (0: no wrapping). */
  wrapTtl: number;
  /** The TLS connection the request came on (undefined over plain HTTP). */
  tls: TlsInfo | undefined;
}

export function envelope(requestId: string, p: Partial<Omit<Envelope, 'request_id'>>): Envelope {
  return {
    request_id: requestId,
    lease_id: p.lease_id ?? '',
    renewable: p.renewable ?? false,
    lease_duration: p.lease_duration ?? 0,
    data: p.data ?? null,
    wrap_info: p.wrap_info ?? null,
    warnings: p.warnings && p.warnings.length > 0 ? p.warnings : null,
    auth: p.auth ?? null,
    mount_type: p.mount_type ?? '',
  };
}

export function ok(ctx: Ctx, p: Partial<Omit<Envelope, 'request_id'>>): Reply {
  return { status: 200, body: envelope(ctx.requestId, p) };
}

export function noContent(): Reply {
  return { status: 204 };
}

// https://developer.hashicorp.com/vault/api-docs#error-response
// Errors are {"errors": [...]}; a missing path is 404 with an empty list.
export function errorReply(status: number, ...errors: string[]): Reply {
  return { status, body: { errors } };
}

export function notFound(): Reply {
  return errorReply(404);
}

/** Bad request from a handler (logical.ErrorResponse + ErrInvalidRequest → 400). */
export function badRequest(msg: string): Reply {
  return errorReply(400, msg);
}

/** No token at all on a path that needs one. */
export const MISSING_TOKEN = 'missing client token';
/** Unknown, revoked or expired token (Vault ≥ 1.15 appends "invalid token"). */
export function invalidToken(): Reply {
  return errorReply(403, 'permission denied', 'invalid token');
}
/** The ACL check failed: core wraps it in a go-multierror, hence the odd text. */
export function aclDenied(): Reply {
  return errorReply(403, '1 error occurred:\n\t* permission denied\n\n');
}
/** A backend refused the login (logical.ErrPermissionDenied). */
export function permissionDenied(): Reply {
  return errorReply(403, 'permission denied');
}

/** Nothing mounted at the path (vault/router.go). */
export function noHandler(path: string): Reply {
  return errorReply(404, `no handler for route "${path}". route entry not found.`);
}

/** A mounted backend has no such path (logical.ErrUnsupportedPath, multierror-wrapped). */
export function unsupportedPath(): Reply {
  return errorReply(404, '1 error occurred:\n\t* unsupported path\n\n');
}

/** The path exists but not for this operation (logical.ErrUnsupportedOperation). */
export function unsupportedOperation(): Reply {
  return errorReply(405, '1 error occurred:\n\t* unsupported operation\n\n');
}

export function newRequestId(): string {
  return uuid();
}
