// The product name with its dot, at the left of every page's top bar.
export function Brand({ title }: { title: string }) {
  return (
    <div className="brand">
      <span className="logo" aria-hidden>
        ●
      </span>
      {title}
    </div>
  );
}
