import type { ComponentChildren } from 'preact';

export type Tone = 'danger' | 'warn' | 'ok' | 'info' | 'muted';

export function Badge({ tone, children, title }: { tone: Tone; children: ComponentChildren; title?: string }) {
  return (
    <span class={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}
