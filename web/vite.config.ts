import { defineConfig } from 'vite';

// During development the API runs in a separate zapd; in production zapd serves this bundle itself.
// Override with ZAPD_DEV_API=http://host:port when zapd listens elsewhere.
declare const process: { env: Record<string, string | undefined> };
const api = process.env.ZAPD_DEV_API || 'http://127.0.0.1:18090';
const proxy = {
  '/api': api,
  '/hooks': api,
  '/static': api,
  '/healthz': api,
};

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2020',
    // Never inline assets or the module-preload polyfill: a CSP "script-src 'self'" applies.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    reportCompressedSize: true,
  },
  server: { proxy },
  preview: { proxy },
});
