// Builds the browser client into dist/, which the interview API (python -m web) serves. The API
// docs page (/docs) uses Swagger UI from dist/docs-assets/, so it works without the internet.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig, type Plugin } from "vite";

const here = dirname(fileURLToPath(import.meta.url));
const SWAGGER_FILES = ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"];

function swaggerAssets(): Plugin {
  return {
    name: "swagger-ui-assets",
    apply: "build",
    closeBundle() {
      const out = join(here, "dist", "docs-assets");
      mkdirSync(out, { recursive: true });
      for (const file of SWAGGER_FILES) {
        copyFileSync(join(here, "node_modules", "swagger-ui-dist", file), join(out, file));
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), swaggerAssets()],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1200 },
  server: { proxy: { "/api": "http://127.0.0.1:8080", "/health": "http://127.0.0.1:8080" } },
});
