// Inline SVG icons (emoji depend on fonts the machine may not have).
const base = {
  width: 18,
  height: 18,
  viewBox: "0 0 24 24",
  fill: "none",
  stroke: "currentColor",
  strokeWidth: 2,
  strokeLinecap: "round" as const,
  strokeLinejoin: "round" as const,
  "aria-hidden": true,
};

export const MicIcon = () => (
  <svg {...base}>
    <rect x="9" y="2" width="6" height="12" rx="3" />
    <path d="M5 10a7 7 0 0 0 14 0M12 17v4M8 21h8" />
  </svg>
);

export const MicOffIcon = () => (
  <svg {...base}>
    <path d="M3 3l18 18M9 9v1a3 3 0 0 0 5.1 2.1M15 9.3V5a3 3 0 0 0-5.7-1.3" />
    <path d="M5 10a7 7 0 0 0 11.6 5.3M19 10a7 7 0 0 1-.4 2.3M12 17v4M8 21h8" />
  </svg>
);

export const SpeakerIcon = () => (
  <svg {...base}>
    <path d="M11 5L6 9H3v6h3l5 4z" />
    <path d="M15.5 8.5a5 5 0 0 1 0 7M18.5 5.5a9 9 0 0 1 0 13" />
  </svg>
);

export const FileIcon = () => (
  <svg {...base}>
    <path d="M14 3H7a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2V8z" />
    <path d="M14 3v5h5M9 13h6M9 17h6" />
  </svg>
);

export const EndIcon = () => (
  <svg {...base}>
    <path d="M4.5 15.5c4.2-3.3 10.8-3.3 15 0l-1.8 2.3-3.2-1.3v-2.6a11 11 0 0 0-5 0v2.6l-3.2 1.3z" />
  </svg>
);
