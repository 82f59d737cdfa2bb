export interface LegendItem {
  key: string;
  label: string;
  color: string;
  dashed?: boolean;
}

export function Legend({ items }: { items: LegendItem[] }) {
  return (
    <ul class="legend">
      {items.map((i) => (
        <li key={i.key}>
          <svg width="14" height="10" aria-hidden="true">
            {i.dashed ? <line x1="0" y1="5" x2="14" y2="5" stroke={i.color} stroke-width="2" stroke-dasharray="3 2" /> : <rect width="14" height="10" rx="2" fill={i.color} />}
          </svg>
          {i.label}
        </li>
      ))}
    </ul>
  );
}
