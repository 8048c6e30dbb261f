// Connects to the engine once, when the app starts in the browser.
import { startEngine } from '~/composables/engine.js'

export default defineNuxtPlugin(() => {
  const config = useRuntimeConfig()
  const fromQuery = new URLSearchParams(window.location.search).get('engine')
  // Dev server (`npm run dev`): its /__engine proxy; static build: this page's origin.
  const url = fromQuery || config.public.engineUrl || (import.meta.dev ? '/__engine' : window.location.origin)
  // A path (the dev server's /__engine proxy) is relative to this page's origin.
  startEngine(url.startsWith('/') ? window.location.origin + url : url)
})
