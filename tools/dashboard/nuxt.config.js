// ebbflow dashboard: a client-only Nuxt 4 app (`nuxt generate` writes a static site to
// .output/public, which the engine serves with `--static`). See docs/dashboard.md.
//
// Where the page connects:
// * served by the engine (static build): the page's own origin;
// * `npm run dev`: the page uses /__engine/… on the dev server's origin, which the dev
//   server proxies to EBBFLOW_ENGINE (default http://127.0.0.1:4000);
// * NUXT_PUBLIC_ENGINE_URL (build or dev time) or `?engine=http://host:port` in the page
//   URL: connect there directly (WebSocket works across origins; SSE and /metrics need the
//   same origin, the engine sends no CORS headers).
const dev = process.env.NODE_ENV === 'development' || process.argv.includes('dev')
const engine = (process.env.EBBFLOW_ENGINE || 'http://127.0.0.1:4000').replace(/\/$/, '')

export default defineNuxtConfig({
  compatibilityDate: '2025-07-15',
  // Client-only rendering. `nuxt generate`: `ssr: false` (one SPA shell per route). The
  // dev server of Nuxt 4.4 refuses `ssr: false` ("No entry found in rollupOptions.input"),
  // so `nuxt dev` gets the same result through routeRules instead (which `generate` in
  // turn refuses: unstorage "Invalid key: /").
  ssr: dev,
  routeRules: dev ? { '/**': { ssr: false } } : {},
  devtools: { enabled: false },
  telemetry: false,
  css: ['~/assets/main.css'],
  app: {
    head: {
      title: 'ebbflow dashboard',
      meta: [{ name: 'viewport', content: 'width=device-width, initial-scale=1' }],
    },
  },
  runtimeConfig: {
    public: {
      engineUrl: '',
    },
  },
  // `npm run dev`: the page talks to /__engine/… on its own origin, proxied to the engine
  // (WebSocket included), so SSE and /metrics work without CORS.
  nitro: {
    devProxy: {
      '/__engine': { target: engine, ws: true, changeOrigin: true },
    },
  },
  vite: {
    server: { fs: { allow: ['../..'] } },
  },
})
