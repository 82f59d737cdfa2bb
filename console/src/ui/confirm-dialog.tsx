import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { useI18n } from '../i18n';

/**
 * A modal question (the browser's <dialog>: focus stays inside, Escape cancels). The safe
 * choice has the focus first, so a stray Enter does nothing irreversible.
 */
export function ConfirmDialog(props: { title: string; confirmLabel: string; danger?: boolean; busy?: boolean; onConfirm: () => void; onCancel: () => void; children: ComponentChildren }) {
  const { t } = useI18n();
  const ref = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    cancel.current?.focus();
    return () => d?.open && d.close();
  }, []);
  return (
    <dialog ref={ref} class="dialog" aria-labelledby="dialog-title" onCancel={(e) => (e.preventDefault(), props.onCancel())}>
      <h2 id="dialog-title">{props.title}</h2>
      <div class="dialog-body">{props.children}</div>
      <div class="dialog-actions">
        <button type="button" ref={cancel} onClick={props.onCancel} disabled={props.busy}>
          {t('action.cancel')}
        </button>
        <button type="button" class={props.danger ? 'danger' : 'primary'} onClick={props.onConfirm} disabled={props.busy} data-action="confirm">
          {props.busy ? t('state.working') : props.confirmLabel}
        </button>
      </div>
    </dialog>
  );
}
