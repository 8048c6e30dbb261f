// Browser test of the dashboard (run by tests/dashboard.rs; see docs/dashboard.md).
//
// Drives Debian's Chromium (/usr/bin/chromium) through playwright-core (which never
// downloads a browser) against a running engine that serves the static build itself.
// Prints one JSON object on its last stdout line: the checks' measured values, the
// performance figures and the screenshots; the Rust test asserts on them.
//
// Environment:
//   ENGINE_URL      http://127.0.0.1:PORT of the engine (serving the dashboard with --static)
//   CONTROL_FILE    the engine's --control file (crashloop NAME / disconnect)
//   STATIC_DIR      the static build (served by a throwaway server for the engine-down check)
//   SCREENSHOT_DIR  where the screenshots go
//   PERF_SECONDS    length of the performance window (default 10)
import { chromium } from 'playwright-core'
import fs from 'node:fs'
import path from 'node:path'
import http from 'node:http'
import os from 'node:os'

const ENGINE = process.env.ENGINE_URL
const CONTROL = process.env.CONTROL_FILE
const STATIC_DIR = process.env.STATIC_DIR
const SHOTS = process.env.SCREENSHOT_DIR
const PERF_SECONDS = Number(process.env.PERF_SECONDS || 10)
const result = { ok: false, steps: {}, errors: [], screenshots: [], page_errors: [], figures: {} }
const VIEWS = ['pipeline', 'k8s-events', 'feedback', 'resources', 'schema', 'drift', 'performance', 'channels', 'rules']
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function log(...a) {
  process.stderr.write(`[browser ${new Date().toISOString().slice(11, 23)}] ${a.join(' ')}\n`)
}

async function step(name, fn) {
  const t0 = Date.now()
  try {
    const v = await fn()
    result.steps[name] = { ok: true, ms: Date.now() - t0, ...(v || {}) }
    log(`ok   ${name} (${Date.now() - t0} ms)`, v ? JSON.stringify(v).slice(0, 300) : '')
  } catch (e) {
    result.steps[name] = { ok: false, ms: Date.now() - t0, error: String(e && e.message || e).slice(0, 500) }
    result.errors.push(`${name}: ${String(e && e.message || e).slice(0, 500)}`)
    log(`FAIL ${name}: ${e && e.stack || e}`)
  }
}

function control(line) {
  fs.writeFileSync(CONTROL + '.tmp', line + '\n')
  fs.renameSync(CONTROL + '.tmp', CONTROL)
}

async function shot(page, name) {
  const file = path.join(SHOTS, `${name}.png`)
  await page.screenshot({ path: file, fullPage: false })
  result.screenshots.push(file)
}

// Long tasks and frame intervals, recorded from before the app starts.
const PERF_INIT = () => {
  window.__perf = { longtasks: [], frames: [], recording: true }
  try {
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) window.__perf.longtasks.push([e.startTime, e.duration])
    }).observe({ type: 'longtask', buffered: true })
  } catch {}
  let last = 0
  const frame = (t) => {
    if (last) window.__perf.frames.push([t, t - last])
    last = t
    requestAnimationFrame(frame)
  }
  requestAnimationFrame(frame)
}

function pct(sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]
}

async function cdpMetrics(cdp) {
  const { metrics } = await cdp.send('Performance.getMetrics')
  return Object.fromEntries(metrics.map((m) => [m.name, m.value]))
}

async function perfWindow(page, seconds) {
  // Main-thread time by kind (Chromium's own counters, cumulative seconds).
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Performance.enable')
  const m0 = await cdpMetrics(cdp)
  const from = await page.evaluate(() => performance.now())
  const s0 = await page.evaluate(() => window.__ebbflow.state().stats.received)
  await sleep(seconds * 1000)
  const to = await page.evaluate(() => performance.now())
  const s1 = await page.evaluate(() => window.__ebbflow.state().stats.received)
  const { longtasks, frames } = await page.evaluate(([a, b]) => ({
    longtasks: window.__perf.longtasks.filter(([t]) => t >= a && t <= b),
    frames: window.__perf.frames.filter(([t]) => t >= a && t <= b).map(([, d]) => d),
  }), [from, to])
  const m1 = await cdpMetrics(cdp)
  await cdp.detach()
  const share = (k) => Number(((m1[k] - m0[k]) / ((to - from) / 1000)).toFixed(3))
  const flushes = (await page.evaluate(() => window.__ebbflow.flushTimes())).slice(-Math.round(seconds * 4)).sort((x, y) => x - y)
  const sorted = frames.slice().sort((x, y) => x - y)
  const secs = (to - from) / 1000
  return {
    seconds: Number(secs.toFixed(2)),
    messages_per_s: Math.round((s1 - s0) / secs),
    long_tasks: longtasks.length,
    long_task_ms_total: Math.round(longtasks.reduce((a, [, d]) => a + d, 0)),
    long_task_ms_max: Math.round(longtasks.reduce((a, [, d]) => Math.max(a, d), 0)),
    long_task_share: Number((longtasks.reduce((a, [, d]) => a + d, 0) / (to - from)).toFixed(4)),
    frames: frames.length,
    frame_ms_p50: Number((pct(sorted, 0.5) || 0).toFixed(1)),
    frame_ms_p95: Number((pct(sorted, 0.95) || 0).toFixed(1)),
    frame_ms_p99: Number((pct(sorted, 0.99) || 0).toFixed(1)),
    frame_ms_max: Number((sorted[sorted.length - 1] || 0).toFixed(1)),
    frames_over_50ms: frames.filter((d) => d > 50).length,
    flush_render_ms_p50: Number((pct(flushes, 0.5) || 0).toFixed(1)),
    flush_render_ms_max: Number((flushes[flushes.length - 1] || 0).toFixed(1)),
    main_thread_share: { task: share('TaskDuration'), script: share('ScriptDuration'), layout: share('LayoutDuration'), style: share('RecalcStyleDuration') },
  }
}

async function text(page, sel) {
  return (await page.locator(sel).first().textContent({ timeout: 5000 })) || ''
}

async function connState(page) {
  return page.evaluate(() => window.__ebbflow && window.__ebbflow.state().conn.state)
}

async function waitConnected(page, ms) {
  await page.waitForFunction(() => window.__ebbflow && ['connected', 'resynced'].includes(window.__ebbflow.state().conn.state), null, { timeout: ms })
}

async function goView(page, view) {
  await page.click(`[data-test="nav-${view}"]`)
  await page.waitForURL(`**/${view}`, { timeout: 5000 })
}

/** The ids the engine's history holds on `topic` after `start`, up to and including `last`. */
async function serverIds(topic, start, last, ms) {
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(), ms)
  const ids = []
  try {
    const r = await fetch(`${ENGINE}/events?topics=${encodeURIComponent(topic)}&last_event_id=${start}`, { signal: ctl.signal })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    const dec = new TextDecoder()
    let buf = ''
    for await (const chunk of r.body) {
      buf += dec.decode(chunk, { stream: true })
      let i
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i)
        buf = buf.slice(i + 1)
        if (line.startsWith('event: gap')) throw new Error('the engine reported a gap: history too short for the check')
        if (line.startsWith('id: ')) {
          const id = line.slice(4).trim()
          ids.push(id)
          if (id === last) {
            ctl.abort()
            return ids
          }
        }
      }
    }
  } catch (e) {
    if (ids[ids.length - 1] === last) return ids
    throw e
  } finally {
    clearTimeout(timer)
  }
  return ids
}

function staticServer(dir) {
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml', '.ico': 'image/x-icon' }
  const srv = http.createServer((req, res) => {
    const p = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    let file = path.join(dir, path.normalize(p).replace(/^(\.\.[/\\])+/, ''))
    if (!file.startsWith(dir) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      const idx = path.join(file, 'index.html')
      file = fs.existsSync(idx) && idx.startsWith(dir) ? idx : path.join(dir, 'index.html')
    }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' })
    fs.createReadStream(file).pipe(res)
  })
  return new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(srv)))
}

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true })
  const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ebbflow-chromium-'))
  log('launching /usr/bin/chromium')
  // One browser, one fresh profile (playwright-core passes `userDataDir` to Chromium as
  // --user-data-dir; it refuses the flag in `args`). Every page is its own tab, so each
  // dashboard has its own session (presence user) and connections.
  const ctx = await chromium.launchPersistentContext(userDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: 60000,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  })
  try {
    await ctx.addInitScript(PERF_INIT)
    const a = ctx.pages()[0] || await ctx.newPage()
    a.on('pageerror', (e) => result.page_errors.push(`A: ${e.message}`))

    await step('page_loads_and_connects', async () => {
      await a.goto(`${ENGINE}/pipeline`, { timeout: 30000 })
      await waitConnected(a, 20000)
      return { state: await connState(a) }
    })

    await step('live_numbers_change', async () => {
      await a.waitForFunction(() => document.querySelector('[data-test="events-total"]').textContent.trim() !== '–', null, { timeout: 10000 })
      const first = await text(a, '[data-test="events-total"]')
      await a.waitForFunction((f) => document.querySelector('[data-test="events-total"]').textContent.trim() !== f, first, { timeout: 5000 })
      const second = await text(a, '[data-test="events-total"]')
      // Per-stage figures arrive on `monitoring` once per window.
      await a.waitForFunction(() => /p99/.test(document.querySelector('[data-test="stage-notify"]').textContent), null, { timeout: 10000 })
      const notify = (await text(a, '[data-test="stage-notify"]')).replace(/\s+/g, ' ').trim()
      return { first: first.trim(), second: second.trim(), notify_stage: notify }
    })

    // Performance: the Pipeline view (charts, diagram) and the Events view (a 200-row table)
    // at the engine's full message rate on the dashboard's topics.
    await step('perf_pipeline', async () => {
      const f = await perfWindow(a, PERF_SECONDS)
      result.figures.pipeline = f
      return f
    })
    await step('perf_events', async () => {
      await goView(a, 'k8s-events')
      const f = await perfWindow(a, PERF_SECONDS)
      result.figures.events = f
      return f
    })

    await step('screenshots', async () => {
      for (const v of VIEWS) {
        await goView(a, v)
        await sleep(v === 'resources' || v === 'schema' ? 1200 : 700)
        await shot(a, `view-${v}`)
      }
      return { count: VIEWS.length }
    })

    // A second dashboard, for the acknowledgement.
    const b = await ctx.newPage()
    b.on('pageerror', (e) => result.page_errors.push(`B: ${e.message}`))
    await step('second_page_connects', async () => {
      await b.goto(`${ENGINE}/feedback`, { timeout: 30000 })
      await waitConnected(b, 20000)
      await b.fill('[data-test="alert-search"]', 'dashboard-probe')
      return {}
    })

    const probe = `probe-${Date.now().toString(36)}`
    const row = `tr[data-alert^="0:"][data-name="${probe}"]`
    await step('crashloop_alert', async () => {
      await goView(a, 'feedback')
      await a.fill('[data-test="alert-search"]', 'dashboard-probe')
      // The moment the row enters the DOM, recorded in the page (same clock as here).
      await a.evaluate((sel) => {
        window.__rowSeenAt = 0
        const mo = new MutationObserver(() => {
          if (document.querySelector(sel)) {
            window.__rowSeenAt = Date.now()
            mo.disconnect()
          }
        })
        mo.observe(document.body, { childList: true, subtree: true })
      }, row)
      const t0 = Date.now()
      control(`crashloop ${probe}`)
      await a.waitForSelector(row, { timeout: 10000 })
      const observed = Date.now() - t0
      const latency = (await a.evaluate(() => window.__rowSeenAt)) - t0
      const rowText = (await a.locator(row).textContent()).replace(/\s+/g, ' ')
      await shot(a, 'alert-crashloop')
      return { probe, latency_ms: latency, playwright_saw_ms: observed, row: rowText.trim(), critical: /critical/.test(rowText), pod_crashloop: /pod_crashloop/.test(rowText), hint: /kubectl logs/.test(rowText) }
    })

    await step('acknowledge_reaches_second_page', async () => {
      await b.waitForSelector(row, { timeout: 10000 })
      const t0 = Date.now()
      await a.click(`${row} [data-test="ack"]`)
      const clicked = Date.now() - t0
      await b.waitForFunction((sel) => /acknowledged/.test(document.querySelector(sel)?.textContent || ''), row, { timeout: 10000 })
      const latency = Date.now() - t0
      await a.waitForFunction((sel) => /acknowledged/.test(document.querySelector(sel)?.textContent || ''), row, { timeout: 5000 })
      const onA = true
      await shot(b, 'second-page-acknowledged')
      return { click_ms: clicked, latency_ms: latency, on_first_page: onA }
    })

    await step('malformed_message', async () => {
      await a.evaluate(() => window.__ebbflow.receiveSse('{"type":"message","topic":"feedback", oops'))
      await a.evaluate(() => window.__ebbflow.receivePhoenix('[1,2,"x"]'))
      await a.evaluate(() => window.__ebbflow.receiveSse('{"type":"message","topic":"dashboard","event":"update","payload":{"events_total":"many"}}'))
      await a.waitForSelector('[data-test="notice-malformed"]', { timeout: 5000 })
      const notice = (await text(a, '[data-test="notice-malformed"]')).trim()
      const malformed = await a.evaluate(() => window.__ebbflow.state().malformed)
      // Still working: the live numbers keep moving.
      await goView(a, 'pipeline')
      const before = await text(a, '[data-test="events-total"]')
      await a.waitForFunction((f) => document.querySelector('[data-test="events-total"]').textContent !== f, before, { timeout: 5000 })
      await shot(a, 'malformed-message')
      return { notice, malformed, still_live: true, reasons: await a.evaluate(() => window.__ebbflow.malformed()) }
    })

    await step('rules_from_engine', async () => {
      // The engine runs the defaults plus `dashboard_probe`, which the page does not bundle.
      await goView(a, 'rules')
      await a.waitForSelector('tr[data-rule="dashboard_probe"]', { timeout: 10000 })
      const cells = await a.$$eval('tr[data-rule="dashboard_probe"] td', (tds) => tds.map((td) => td.textContent.trim()))
      return {
        source: (await text(a, '[data-test="rules-source"]')).trim(),
        probe_kind: cells[2],
        probe_when: cells[3],
        rows: await a.$$eval('tr[data-rule]', (trs) => trs.length),
      }
    })

    await step('command_rejected', async () => {
      await goView(a, 'rules')
      await a.fill('[data-test="threshold-input-price_move"]', 'high')
      await a.click('[data-test="set-threshold-price_move"]')
      await a.waitForSelector('[data-test="rule-result"]', { timeout: 5000 })
      const rejected = (await text(a, '[data-test="rule-result"]')).trim()
      const notice = (await text(a, '[data-test="notice-cmd-set_threshold"]')).trim()
      await shot(a, 'command-rejected')
      // The page keeps working: a valid threshold is applied and shown on both pages.
      await a.fill('[data-test="threshold-input-price_move"]', '3.5')
      await a.click('[data-test="set-threshold-price_move"]')
      await a.waitForFunction(() => /threshold set to 3.5/.test(document.querySelector('[data-test="rule-result"]').textContent), null, { timeout: 5000 })
      const accepted = (await text(a, '[data-test="rule-result"]')).trim()
      await goView(b, 'rules')
      await b.waitForFunction(() => document.querySelector('tr[data-rule="price_move"] [data-test="threshold"]').textContent.trim() === '3.5', null, { timeout: 5000 })
      await goView(b, 'feedback')
      return { rejected, notice, accepted, second_page_threshold: '3.5' }
    })

    await step('forced_disconnect_resumes_without_gaps', async () => {
      await goView(a, 'k8s-events')
      await a.evaluate(() => { window.__connLog = []; const t = setInterval(() => { const s = window.__ebbflow.state().conn.state; const l = window.__connLog; if (!l.length || l[l.length - 1] !== s) l.push(s) }, 10); window.__connLogTimer = t })
      const before = await a.evaluate(() => window.__ebbflow.eventIds())
      const reconnectsBefore = await a.evaluate(() => window.__ebbflow.state().conn && 0)
      control('disconnect')
      await a.waitForFunction(() => window.__connLog.includes('reconnecting'), null, { timeout: 5000, polling: 10 })
      const badge = await text(a, '[data-test="conn-state"]')
      await shot(a, 'reconnecting')
      await waitConnected(a, 15000)
      await sleep(500)
      const after = await a.evaluate(() => window.__ebbflow.eventIds())
      const log = await a.evaluate(() => { clearInterval(window.__connLogTimer); return window.__connLog })
      // From 100 rows before the disconnect (the engine keeps 4,096 per topic).
      const start = before[Math.max(0, before.length - 100)]
      const i0 = after.indexOf(start)
      if (i0 < 0) throw new Error(`start id ${start} not in the page's ids`)
      const pageIds = after.slice(i0 + 1)
      const last = pageIds[pageIds.length - 1]
      const server = await serverIds('k8s:events', start, last, 15000)
      let firstDiff = -1
      for (let i = 0; i < Math.max(server.length, pageIds.length); i++) {
        if (server[i] !== pageIds[i]) { firstDiff = i; break }
      }
      const dupes = pageIds.length - new Set(pageIds).size
      await shot(a, 'resumed')
      return {
        conn_log: log, badge_seen: badge.trim(), start, last,
        page_rows: pageIds.length, server_rows: server.length,
        missing: server.filter((id) => !pageIds.includes(id)).length,
        duplicates: dupes, first_difference: firstDiff,
        rows_during_outage: pageIds.length - (before.length - before.indexOf(start) - 1),
        state_after: await connState(a), reconnects: reconnectsBefore,
      }
    })

    await step('presence_lists_both_pages', async () => {
      await goView(a, 'channels')
      await a.waitForFunction(() => {
        const t = document.querySelector('[data-test="presence"]')?.textContent || ''
        return (t.match(/dash-/g) || []).length >= 2
      }, null, { timeout: 10000 })
      const presence = (await text(a, '[data-test="presence"]')).replace(/\s+/g, ' ').trim()
      const connections = (await text(a, '[data-test="connections"]')).replace(/\s+/g, ' ').trim()
      await shot(a, 'view-channels-two-pages')
      return { presence, connections }
    })
    await b.close()

    await step('engine_down_at_page_load', async () => {
      const srv = await staticServer(path.resolve(STATIC_DIR))
      const dead = await new Promise((resolve) => { const s = http.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)) }) })
      const c = await ctx.newPage()
      c.on('pageerror', (e) => result.page_errors.push(`C: ${e.message}`))
      try {
        await c.goto(`http://127.0.0.1:${srv.address().port}/pipeline?engine=http://127.0.0.1:${dead}`, { timeout: 30000 })
        await c.waitForFunction(() => window.__ebbflow && window.__ebbflow.state().conn.state === 'unreachable', null, { timeout: 15000 })
        const notice = (await text(c, '[data-test="notice-unreachable"]')).trim()
        const badge = (await text(c, '[data-test="conn-state"]')).trim()
        // Keeps working: another view renders and a command gets a specific answer.
        await goView(c, 'rules')
        await c.click('[data-test="set-threshold-price_move"]')
        const cmd = (await text(c, '[data-test="rule-result"]')).trim()
        await shot(c, 'engine-unreachable')
        return { badge, notice, command_answer: cmd }
      } finally {
        await c.close()
        srv.close()
      }
    })

  } finally {
    await ctx.close()
    fs.rmSync(userDir, { recursive: true, force: true })
  }
  result.ok = result.errors.length === 0
}

const hardStop = setTimeout(() => {
  result.errors.push('the browser test ran past its 240 s limit')
  console.log(JSON.stringify(result))
  process.exit(2)
}, 240000)

main()
  .catch((e) => result.errors.push(`fatal: ${e && e.stack || e}`))
  .finally(() => {
    clearTimeout(hardStop)
    console.log(JSON.stringify(result))
    process.exit(result.ok ? 0 : 1)
  })
