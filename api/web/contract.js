// Generated from /openapi.json by api/src/web_contract.rs; do not edit.

export const ErrorCode = Object.freeze({
  VALIDATION_ERROR: 'VALIDATION_ERROR',
  AUTHENTICATION_REQUIRED: 'AUTHENTICATION_REQUIRED',
  INVALID_CREDENTIALS: 'INVALID_CREDENTIALS',
  INSUFFICIENT_PERMISSIONS: 'INSUFFICIENT_PERMISSIONS',
  RESOURCE_NOT_FOUND: 'RESOURCE_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  CONFLICT: 'CONFLICT',
  JOB_NOT_READY: 'JOB_NOT_READY',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  RATE_LIMIT_EXCEEDED: 'RATE_LIMIT_EXCEEDED',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  OUTPUTS_EXPIRED: 'OUTPUTS_EXPIRED',
  SERVICE_UNAVAILABLE: 'SERVICE_UNAVAILABLE',
  INVALID_SIGNATURE: 'INVALID_SIGNATURE',
  PAYMENT_PROVIDER_ERROR: 'PAYMENT_PROVIDER_ERROR',
  INVALID_TOKEN: 'INVALID_TOKEN',
  EMAIL_NOT_VERIFIED: 'EMAIL_NOT_VERIFIED',
  INVALID_MFA_CODE: 'INVALID_MFA_CODE',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
});

export const JobStatus = Object.freeze({
  PENDING: 'PENDING',
  PROCESSING: 'PROCESSING',
  RETRYING: 'RETRYING',
  SUCCESS: 'SUCCESS',
  FAILED: 'FAILED',
  CANCELLED: 'CANCELLED',
});

export const Stage = Object.freeze({
  QUEUED: 'queued',
  DOWNLOADING: 'downloading',
  PROBING: 'probing',
  ANALYZING: 'analyzing',
  RENDERING: 'rendering',
  UPLOADING: 'uploading',
  DONE: 'done',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
});

export const FailureCode = Object.freeze({
  INVALID_MEDIA: 'INVALID_MEDIA',
  CLIPS_TOO_SHORT: 'CLIPS_TOO_SHORT',
  RENDER_FAILED: 'RENDER_FAILED',
  RENDER_TIMEOUT: 'RENDER_TIMEOUT',
  MEDIA_CRASHED: 'MEDIA_CRASHED',
  INFRASTRUCTURE_ERROR: 'INFRASTRUCTURE_ERROR',
  WORKER_LOST: 'WORKER_LOST',
});

export const Style = Object.freeze({
  CINEMATIC: 'cinematic',
  GAMING: 'gaming',
  ENERGETIC: 'energetic',
  CHILL: 'chill',
});

export const OutputFormat = Object.freeze({
  LANDSCAPE: 'landscape',
  PORTRAIT: 'portrait',
});

export const ClipStatus = Object.freeze({
  PENDING: 'PENDING',
  READY: 'READY',
  REJECTED: 'REJECTED',
});

export const SyncStatus = Object.freeze({
  PENDING: 'PENDING',
  RUNNING: 'RUNNING',
  SUCCESS: 'SUCCESS',
  FAILED: 'FAILED',
});

export const PostStatus = Object.freeze({
  PENDING: 'PENDING',
  UPLOADING: 'UPLOADING',
  PROCESSING: 'PROCESSING',
  PUBLISHED: 'PUBLISHED',
  FAILED: 'FAILED',
});

export const WeeklyOutcome = Object.freeze({
  BUILT: 'built',
  TOO_LITTLE: 'too_little',
  OVER_QUOTA: 'over_quota',
});

export const LiveType = Object.freeze({
  JOB: 'job',
  SYNC: 'sync',
  POST: 'post',
  SESSION_ENDED: 'session_ended',
});
