import type { ComponentChildren } from 'preact';

/** One figure with its label, for the rows of figures at the top of a page. */
export function Stat({ label, value, hint, field }: { label: string; value: ComponentChildren; hint?: ComponentChildren; field?: string }) {
  return (
    <div class="stat" data-field={field}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {hint !== undefined && <div class="stat-hint">{hint}</div>}
    </div>
  );
}
