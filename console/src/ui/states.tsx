import type { ComponentChildren } from 'preact';
import { useI18n, type MessageKey } from '../i18n';
import type { GatewayError } from '../graphql/client';

export function Loading({ label }: { label?: string }) {
  const { t } = useI18n();
  return (
    <div class="state state-loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label ?? t('state.loading')}
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return (
    <div class="state state-empty" role="status">
      {children}
    </div>
  );
}

const KNOWN_CODES: Record<string, MessageKey> = {
  FORBIDDEN: 'error.forbidden',
  NETWORK: 'error.network',
  SERVICE_UNAVAILABLE: 'error.unavailable',
  BAD_USER_INPUT: 'error.badInput',
  NOT_FOUND: 'error.notFound',
  TRUSTED_DOCUMENT_REQUIRED: 'error.untrusted',
};

/** What went wrong, in the operator's language where the code is known, with the gateway's words beside. */
export function ErrorState({ error, retry }: { error: GatewayError; retry?: () => void }) {
  const { t } = useI18n();
  const known = error.code ? KNOWN_CODES[error.code] : undefined;
  return (
    <div class="state state-error" role="alert">
      <p>
        <strong>{t(known ?? 'error.generic')}</strong>
      </p>
      {error.code !== 'NETWORK' && <p class="muted">{error.message}</p>}
      {retry && (
        <button type="button" onClick={retry}>
          {t('action.retry')}
        </button>
      )}
    </div>
  );
}
