// The dashboard's one connection to the engine and the state every view reads.
//
// Transports (docs/dashboard.md):
// * SSE (`EventSource`, /events): the ordered topics, resumed without gaps by
//   Last-Event-ID after a reconnect: k8s:events, state, feedback, recovery, drift,
//   reactor:steps, commands. A second SSE stream replays `schema` from the start of the
//   engine's history (its versions) and then follows it.
// * Phoenix Channels (official `phoenix` client, /socket): the coalesced topics
//   (dashboard, monitoring, analytics: latest wins, a joiner first gets the latest),
//   presence on every joined topic, and commands pushed on `commands` with their replies.
//
// Messages are parsed as they arrive into plain (non-reactive) structures; the reactive
// state `S` is refreshed at most every FLUSH_MS, so the page renders a few times a second
// however many messages arrive.
import { nextTick, shallowReactive } from 'vue'
import { Socket, Presence } from 'phoenix'
import { parseRules } from '~/utils/rules.js'
import defaultRulesText from '../../../../examples/rules/default.rules?raw'

export const STAGES = ['source', 'journal', 'reactor', 'resources', 'distribution', 'bitactor', 'schema', 'turtle', 'typer', 'notify']
const SSE_TOPICS = ['k8s:events', 'state', 'feedback', 'recovery', 'drift', 'reactor:steps', 'commands']
const PHX_TOPICS = ['dashboard', 'monitoring', 'analytics', 'commands']
const FLUSH_MS = 250
const EVENTS_KEPT = 1000
const ALERTS_KEPT = 3000
const HISTORY_POINTS = 600
const PUSH_TIMEOUT_MS = 5000

/** The reactive state the views read (replaced wholesale on each flush). */
export const S = shallowReactive({
  engineUrl: '',
  user: '',
  conn: { state: 'connecting', detail: 'connecting to the engine…', phx: 'connecting', sse: 'connecting' },
  reconnects: 0,
  lastResume: null,
  notices: [],
  stats: { received: 0, perSecond: 0, malformed: 0, lastAt: 0 },
  dashboard: null,
  dashHistory: [[], [], []],
  monitoring: null,
  stageRates: {},
  perfHistory: { t: [], byStage: {} },
  analytics: null,
  analyticsHistory: [[], []],
  events: [],
  eventsVersion: 0,
  alerts: [],
  alertsVersion: 0,
  recovery: [],
  drift: [],
  driftCounts: { drift: 0, corrected: 0 },
  steps: { summary: null, recent: [] },
  schemaVersions: [],
  instances: null,
  resources: { count: 0, version: 0, snapshot: 'none', lastSnapshot: null },
  commandLog: [],
  rules: [],
  // Where the Rules view's definitions come from: the built-in defaults until the engine
  // answers the `rules` command, then 'engine'.
  rulesSource: 'built-in defaults',
  presence: {},
  metrics: { connections: {}, scrapedAt: 0, error: '' },
  positions: { sse: '', schema: '' },
})

// ---------------------------------------------------------------- plain state

const P = {
  events: [],
  eventIdLog: [], // every k8s:events id received, in order (the browser test's gap check)
  alerts: new Map(), // "rule:key" -> alert
  acked: new Map(), // "rule:key" -> {by, at}
  hints: new Map(), // "rule:key" -> hint text
  recovery: [],
  drift: [],
  driftCounts: { drift: 0, corrected: 0 },
  steps: { summary: null, recent: [] },
  schemaVersions: new Map(),
  instances: null,
  resources: new Map(),
  snapshot: null, // {request, last_seq, objects: [], pending: []} while one is arriving
  commandLog: [],
  rules: new Map(),
  dashHistory: [[], [], []],
  perf: { t: [], byStage: {} },
  lastMonitoring: null,
  analyticsHistory: [[], []],
  dirty: new Set(),
  received: 0,
  receivedAtLastRate: 0,
  lastRateAt: 0,
  malformed: 0,
}

const definitions = parseRules(defaultRulesText)
for (const d of definitions) {
  P.rules.set(d.id, { id: d.id, name: d.name, kind: d.kind, when: d.when, severity: d.severity, hint: d.hint, threshold: d.threshold, liveThreshold: null, fired: 0, enabled: null })
}

// ---------------------------------------------------------------- notices

let noticeSeq = 0
/** Shows a message at the top of the page (`level`: info | warn | error). */
export function notify(level, text, key = '') {
  const now = Date.now()
  const list = S.notices.filter((n) => !key || n.key !== key)
  list.unshift({ id: ++noticeSeq, level, text, key, at: now })
  S.notices = list.slice(0, 6)
}
export function dismiss(id) {
  S.notices = S.notices.filter((n) => n.id !== id)
}
function clearNotice(key) {
  if (S.notices.some((n) => n.key === key)) S.notices = S.notices.filter((n) => n.key !== key)
}

const malformedLog = []
function malformed(transport, raw, why) {
  P.malformed++
  malformedLog.push(why)
  if (malformedLog.length > 20) malformedLog.shift()
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw)
  notify('error', `Malformed message from the engine (${transport}): ${why}; ignored. Received: ${String(text).slice(0, 80)}`, 'malformed')
  P.dirty.add('stats')
}

// ---------------------------------------------------------------- connection state

const T = {
  phx: 'connecting',
  sse: 'connecting',
  everOpen: false,
  resynced: false,
  unreachable: false,
  lastDown: 0,
}

function setConn() {
  let state
  let detail
  const base = S.engineUrl
  if (T.phx === 'open' && T.sse === 'open') {
    T.unreachable = false
    clearNotice('unreachable')
    state = T.resynced ? 'resynced' : 'connected'
    detail = T.resynced
      ? 'connected; resynced from a fresh snapshot after a gap'
      : S.lastResume
        ? `connected; resumed after ${S.lastResume.from ? 'position ' + S.lastResume.from : 'reconnect'}`
        : 'connected'
  } else if (T.unreachable) {
    state = 'unreachable'
    detail = `engine unreachable at ${base}; retrying`
  } else if (!T.everOpen) {
    state = 'connecting'
    detail = `connecting to ${base}…`
  } else {
    state = 'reconnecting'
    detail = `reconnecting (Phoenix ${T.phx}, SSE ${T.sse})…`
  }
  const c = S.conn
  if (c.state !== state || c.detail !== detail || c.phx !== T.phx || c.sse !== T.sse) {
    S.conn = { state, detail, phx: T.phx, sse: T.sse }
  }
}

function transportDown(which) {
  if (T[which] === 'open') {
    S.reconnects++
    T.lastDown = Date.now()
  }
  T[which] = T.everOpen ? 'reconnecting' : 'connecting'
  setConn()
  probeHealth()
}

function transportUp(which) {
  T[which] = 'open'
  if (T.phx === 'open' && T.sse === 'open') T.everOpen = true
  setConn()
}

let probing = false
async function probeHealth() {
  if (probing) return
  probing = true
  try {
    const r = await fetch(`${S.engineUrl}/healthz`, { cache: 'no-store' })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    T.unreachable = false
  } catch (e) {
    T.unreachable = true
    notify('error', `The engine is unreachable at ${S.engineUrl} (${e.message || e}). The page keeps retrying and resumes when it is back.`, 'unreachable')
  } finally {
    probing = false
    setConn()
    if (T.unreachable) setTimeout(probeHealth, 2000)
  }
}

// ---------------------------------------------------------------- message handling

function ringPush(arr, item, max) {
  arr.push(item)
  if (arr.length > max + max / 5) arr.splice(0, arr.length - max)
}

function objectOf(p) {
  const o = p && typeof p === 'object' ? p.object || p : null
  if (!o || typeof o.key !== 'string') return null
  return o
}

const handlers = {
  'k8s:events'(event, p, id) {
    const o = objectOf(p)
    if (!o) return malformed('sse', p, 'k8s:events change without an object key')
    ringPush(P.events, {
      id,
      at: Date.now(),
      change: p.change,
      op: p.op,
      kind: o.kind,
      namespace: o.namespace || '',
      name: o.name || '',
      key: o.key,
      seq: o.seq,
      changed: Array.isArray(p.changed) ? p.changed.join(', ') : '',
    }, EVENTS_KEPT)
    P.eventIdLog.push(id)
    if (P.eventIdLog.length > 200000) P.eventIdLog.splice(0, 100000)
    P.dirty.add('events')
  },
  state(event, p) {
    if (event === 'delta') {
      const o = objectOf(p)
      if (!o) return malformed('sse', p, 'state delta without an object key')
      if (P.snapshot) {
        P.snapshot.pending.push(p)
      } else {
        applyDelta(p)
      }
    } else if (event === 'snapshot_begin') {
      P.snapshot = { request: p.request, last_seq: p.last_seq, objects: [], pending: [] }
      S.resources = { ...S.resources, snapshot: 'receiving' }
    } else if (event === 'snapshot_chunk' && P.snapshot && p.request === P.snapshot.request) {
      for (const o of p.objects || []) P.snapshot.objects.push(o)
    } else if (event === 'snapshot_end' && P.snapshot && p.request === P.snapshot.request) {
      const snap = P.snapshot
      P.snapshot = null
      P.resources = new Map()
      for (const o of snap.objects) P.resources.set(o.key, o)
      let applied = 0
      for (const d of snap.pending) {
        const o = objectOf(d)
        if (o && (snap.last_seq == null || o.seq > snap.last_seq)) {
          applyDelta(d)
          applied++
        }
      }
      S.resources = { ...S.resources, snapshot: 'done', lastSnapshot: { request: snap.request, objects: snap.objects.length, last_seq: snap.last_seq, deltasAfter: applied, at: Date.now() } }
    }
    P.dirty.add('resources')
  },
  feedback(event, p) {
    if (typeof p.key !== 'string' || p.rule == null) return malformed('sse', p, 'feedback message without rule and key')
    const id = `${p.rule}:${p.key}`
    const now = Date.now()
    let a = P.alerts.get(id)
    if (event === 'alert') {
      if (a) P.alerts.delete(id) // re-insert: newest last
      const ack = P.acked.get(id)
      a = { id, rule: p.rule, rule_name: p.rule_name, severity: p.severity, kind: p.kind, namespace: p.namespace || '', name: p.name || '', key: p.key, observed: p.observed, threshold: p.threshold, seq: p.seq, active: true, raisedAt: now, clearedAt: 0, acked: !!ack, ackedAt: ack ? ack.at : 0, hint: P.hints.get(id) || ruleHint(p.rule) }
      P.alerts.set(id, a)
      if (P.alerts.size > ALERTS_KEPT) {
        for (const [k, v] of P.alerts) {
          if (P.alerts.size <= ALERTS_KEPT) break
          if (!v.active || P.alerts.size > ALERTS_KEPT * 1.2) P.alerts.delete(k)
        }
      }
      const r = P.rules.get(p.rule) || { id: p.rule, name: p.rule_name, severity: p.severity, fired: 0 }
      r.fired = (r.fired || 0) + 1
      if (p.threshold != null) r.liveThreshold = p.threshold
      r.name = p.rule_name || r.name
      r.severity = p.severity || r.severity
      P.rules.set(p.rule, r)
      P.dirty.add('rules')
    } else if (event === 'cleared') {
      if (a) {
        a.active = false
        a.clearedAt = now
      }
    }
    P.dirty.add('alerts')
  },
  recovery(event, p, id) {
    if (event === 'hint' && p.key != null) {
      const aid = `${p.rule}:${p.key}`
      P.hints.set(aid, p.hint)
      if (P.hints.size > ALERTS_KEPT * 2) P.hints.delete(P.hints.keys().next().value)
      const a = P.alerts.get(aid)
      if (a) a.hint = p.hint
      P.dirty.add('alerts')
    }
    ringPush(P.recovery, { id, event, at: Date.now(), kind: p.kind, namespace: p.namespace, name: p.name, rule_name: p.rule_name, severity: p.severity, hint: p.hint, reason: p.reason, step: p.step, attempt: p.attempt }, 300)
    P.dirty.add('recovery')
  },
  drift(event, p, id) {
    if (typeof p.key !== 'string') return malformed('sse', p, 'drift message without a key')
    P.driftCounts[event] = (P.driftCounts[event] || 0) + 1
    ringPush(P.drift, { id, event, at: Date.now(), kind: p.kind, namespace: p.namespace || '', name: p.name || '', key: p.key, baseline: p.baseline, observed: p.observed, seq: p.seq }, 500)
    P.dirty.add('drift')
  },
  'reactor:steps'(event, p, id) {
    if (event === 'summary') P.steps.summary = p
    else ringPush(P.steps.recent, { id, event, at: Date.now(), ...p }, 200)
    P.dirty.add('steps')
  },
  commands(event, p, id) {
    if (P.commandLog.some((c) => c.id === id)) return
    ringPush(P.commandLog, { id, event, at: Date.now(), ...p }, 200)
    if (event === 'applied' && p.command === 'ack_alert') {
      const aid = `${p.rule}:${p.key}`
      P.acked.set(aid, { at: Date.now(), request: p.request })
      const a = P.alerts.get(aid)
      if (a) {
        a.acked = true
        a.ackedAt = Date.now()
      }
      P.dirty.add('alerts')
    }
    if (event === 'applied' && p.command === 'set_threshold') {
      const r = P.rules.get(p.rule)
      if (r) r.liveThreshold = p.value
      P.dirty.add('rules')
    }
    if (event === 'applied' && p.command === 'enable_rule') {
      const r = P.rules.get(p.rule)
      if (r) r.enabled = p.enabled
      P.dirty.add('rules')
    }
    P.dirty.add('commands')
  },
  schema(event, p, id) {
    if (event === 'instances') {
      // A snapshot's objects as Turtle instances of the schema, in chunks.
      if (!P.instances || P.instances.request !== p.request) P.instances = { request: p.request, schema_version: p.schema_version, chunks: [] }
      if (P.instances.chunks.length < 5) P.instances.chunks.push(p.turtle)
      P.dirty.add('schema')
      return
    }
    if (event !== 'version' || p.version == null) return malformed('sse', p, 'schema message without a version')
    P.schemaVersions.set(p.version, { ...p, id })
    P.dirty.add('schema')
  },
  dashboard(event, p) {
    if (typeof p.events_total !== 'number') return malformed('phoenix', p, 'dashboard update without events_total')
    S.dashboard = p
    const h = P.dashHistory
    h[0].push(Date.now() / 1000)
    h[1].push(p.events_per_s || 0)
    h[2].push(p.active_alerts || 0)
    if (h[0].length > HISTORY_POINTS) for (const a of h) a.shift()
    P.dirty.add('dash')
  },
  monitoring(event, p) {
    if (!Array.isArray(p.stages)) return malformed('phoenix', p, 'monitoring stats without stages')
    const now = Date.now()
    const prev = P.lastMonitoring
    const rates = {}
    if (prev) {
      const dt = (now - prev.at) / 1000
      for (const s of p.stages) {
        const ps = prev.p.stages.find((x) => x.name === s.name)
        if (ps && dt > 0) rates[s.name] = Math.max(0, (s.events_in - ps.events_in) / dt)
      }
    }
    P.lastMonitoring = { at: now, p }
    S.monitoring = p
    if (prev) S.stageRates = rates
    const perf = P.perf
    perf.t.push(now / 1000)
    for (const s of p.stages) {
      let b = perf.byStage[s.name]
      if (!b) {
        b = perf.byStage[s.name] = { p50: [], p99: [], p999: [], rate: [] }
        for (let i = 0; i < perf.t.length - 1; i++) { b.p50.push(null); b.p99.push(null); b.p999.push(null); b.rate.push(null) }
      }
      b.p50.push(s.p50_ns / 1000)
      b.p99.push(s.p99_ns / 1000)
      b.p999.push(s.p999_ns / 1000)
      b.rate.push(rates[s.name] ?? null)
    }
    if (perf.t.length > HISTORY_POINTS) {
      perf.t.shift()
      for (const b of Object.values(perf.byStage)) for (const a of Object.values(b)) a.shift()
    }
    P.dirty.add('perf')
  },
  analytics(event, p) {
    if (typeof p.events_per_s !== 'number') return malformed('phoenix', p, 'analytics window without events_per_s')
    S.analytics = p
    P.analyticsHistory[0].push(Date.now() / 1000)
    P.analyticsHistory[1].push(p.events_per_s)
    if (P.analyticsHistory[0].length > HISTORY_POINTS) for (const a of P.analyticsHistory) a.shift()
    P.dirty.add('analytics')
  },
}

function ruleHint(rule) {
  const r = P.rules.get(rule)
  return r ? r.hint || '' : ''
}

function applyDelta(p) {
  const o = objectOf(p)
  if (!o) return
  if (p.change === 'deleted') P.resources.delete(o.key)
  else P.resources.set(o.key, o)
}

/** Handles one decoded message; `transport` names where it came from (for errors). */
function dispatch(transport, topic, event, payload, id) {
  P.received++
  if (typeof topic !== 'string' || typeof event !== 'string' || payload == null || typeof payload !== 'object') {
    return malformed(transport, { topic, event, payload }, 'missing topic, event or object payload')
  }
  const h = handlers[topic]
  if (!h) return
  try {
    h(event, payload, id)
  } catch (e) {
    malformed(transport, payload, `cannot handle ${topic}/${event}: ${e.message}`)
  }
}

/** Handles one SSE `data:` text (what EventSource hands `onmessage`). */
function onSseData(stream, data, lastEventId) {
  let m
  try {
    m = JSON.parse(data)
  } catch {
    return malformed('sse', data, 'not JSON')
  }
  if (!m || typeof m !== 'object' || m.type !== 'message') return malformed('sse', data, 'not a {"type":"message",…} object')
  if (lastEventId) stream.lastId = lastEventId
  dispatch('sse', m.topic, m.event, m.payload, m.id || lastEventId)
}

// ---------------------------------------------------------------- flush

// How long each flush took, with the re-render it caused (ms), for the browser test.
const flushTimes = []
function flush() {
  const t0 = performance.now()
  flushState()
  nextTick(() => {
    flushTimes.push(performance.now() - t0)
    if (flushTimes.length > 400) flushTimes.splice(0, 200)
  })
}

function flushState() {
  const d = P.dirty
  const now = Date.now()
  if (now - P.lastRateAt >= 1000) {
    const dt = (now - P.lastRateAt) / 1000
    S.stats = { received: P.received, perSecond: P.lastRateAt ? (P.received - P.receivedAtLastRate) / dt : 0, malformed: P.malformed, lastAt: now }
    P.lastRateAt = now
    P.receivedAtLastRate = P.received
  } else if (d.has('stats')) {
    S.stats = { ...S.stats, received: P.received, malformed: P.malformed }
  }
  if (d.size === 0) return
  if (d.has('events')) {
    S.events = P.events.slice(-EVENTS_KEPT)
    S.eventsVersion++
  }
  if (d.has('alerts')) {
    S.alerts = Array.from(P.alerts.values())
    S.alertsVersion++
  }
  if (d.has('recovery')) S.recovery = P.recovery.slice()
  if (d.has('drift')) {
    S.drift = P.drift.slice()
    S.driftCounts = { ...P.driftCounts }
  }
  if (d.has('steps')) S.steps = { summary: P.steps.summary, recent: P.steps.recent.slice() }
  if (d.has('schema')) S.instances = P.instances && { ...P.instances, chunks: P.instances.chunks.slice() }
  if (d.has('schema')) S.schemaVersions = Array.from(P.schemaVersions.values()).sort((a, b) => a.version - b.version)
  if (d.has('resources')) S.resources = { ...S.resources, count: P.resources.size, version: S.resources.version + 1 }
  if (d.has('commands')) S.commandLog = P.commandLog.slice()
  if (d.has('rules')) S.rules = Array.from(P.rules.values()).map((r) => ({ ...r })).sort((a, b) => a.id - b.id)
  if (d.has('dash')) S.dashHistory = P.dashHistory.map((a) => a.slice())
  if (d.has('perf')) {
    const byStage = {}
    for (const [k, b] of Object.entries(P.perf.byStage)) byStage[k] = { p50: b.p50.slice(), p99: b.p99.slice(), p999: b.p999.slice(), rate: b.rate.slice() }
    S.perfHistory = { t: P.perf.t.slice(), byStage }
  }
  if (d.has('analytics')) S.analyticsHistory = P.analyticsHistory.map((a) => a.slice())
  d.clear()
}

/** Resources (kept by snapshot + deltas), filtered, at most `limit` rows. */
export function resourceRows(filter, limit = 200) {
  const out = []
  const f = (filter || '').toLowerCase()
  for (const o of P.resources.values()) {
    if (f && !`${o.kind} ${o.namespace} ${o.name}`.toLowerCase().includes(f)) continue
    out.push(o)
    if (out.length >= limit) break
  }
  return out
}

/** Keys of every resource held (for checks). */
export function resourceKeys() {
  return Array.from(P.resources.keys())
}

// ---------------------------------------------------------------- transports

let socket = null
const channels = {}
const sse = { main: null, schema: null }

function openSse(name, topics, since) {
  const stream = sse[name] || { lastId: since || '', es: null, retryTimer: null, opened: 0 }
  sse[name] = stream
  const q = new URLSearchParams({ topics: topics.join(',') })
  if (stream.lastId) q.set('last_event_id', stream.lastId)
  const es = new EventSource(`${S.engineUrl}/events?${q}`)
  stream.es = es
  es.onopen = () => {
    stream.opened++
    if (stream.opened > 1) S.lastResume = { from: stream.lastId, at: Date.now(), stream: name }
    if (name === 'main') transportUp('sse')
  }
  es.onmessage = (e) => onSseData(stream, e.data, e.lastEventId)
  es.addEventListener('gap', (e) => {
    let g
    try {
      g = JSON.parse(e.data)
    } catch {
      return malformed('sse', e.data, 'gap event that is not JSON')
    }
    if (e.lastEventId) stream.lastId = e.lastEventId
    T.resynced = true
    notify('warn', `Resume gap on ${g.topic} (${g.reason}): the engine no longer holds the missed messages; resynced${g.topic === 'state' ? ' Resources from a fresh snapshot' : ' and continuing live'}.`, `gap-${g.topic}`)
    if (g.topic === 'state') requestSnapshot()
    setConn()
  })
  es.onerror = () => {
    if (name === 'main') transportDown('sse')
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (a non-200 answer): reopen from our own last id.
      clearTimeout(stream.retryTimer)
      stream.retryTimer = setTimeout(() => openSse(name, topics), 2000)
    }
  }
}

function joinPhoenix() {
  const wsBase = S.engineUrl.replace(/^http/, 'ws')
  socket = new Socket(`${wsBase}/socket`, {
    params: {},
    heartbeatIntervalMs: 15000,
    reconnectAfterMs: (tries) => [100, 250, 500, 1000, 2000][tries - 1] || 3000,
    rejoinAfterMs: (tries) => [200, 500, 1000][tries - 1] || 2000,
    decode: (raw, callback) => {
      let arr
      try {
        arr = JSON.parse(raw)
      } catch {
        return malformed('phoenix', raw, 'not JSON')
      }
      if (!Array.isArray(arr) || arr.length !== 5) return malformed('phoenix', raw, 'not a [join_ref, ref, topic, event, payload] array')
      const [join_ref, ref, topic, event, payload] = arr
      return callback({ join_ref, ref, topic, event, payload })
    },
  })
  socket.onOpen(() => {})
  socket.onError(() => transportDown('phx'))
  socket.onClose(() => transportDown('phx'))
  let joined = 0
  for (const topic of PHX_TOPICS) {
    const ch = socket.channel(topic, () => ({ user: S.user }))
    channels[topic] = ch
    if (topic !== 'commands') {
      for (const ev of ['update', 'stats', 'window']) ch.on(ev, (p) => dispatch('phoenix', topic, ev, p))
    }
    const presence = new Presence(ch)
    presence.onSync(() => {
      S.presence = { ...S.presence, [topic]: presence.list((id, { metas }) => ({ id, connections: metas.length, since: metas[0] && metas[0].online_at })) }
    })
    ch.join()
      .receive('ok', (resp) => {
        joined++
        if (topic === 'dashboard' && resp && typeof resp.position === 'string' && !sse.schema) {
          // Replay `schema` from the start of this engine's history (its versions).
          openSse('schema', ['schema'], `${resp.position.split(':')[0]}:0`)
        }
        if (Object.values(channels).every((c) => c.state === 'joined')) transportUp('phx')
      })
      .receive('error', (resp) => notify('error', `The engine refused to join ${topic}: ${(resp && resp.reason) || 'unknown reason'}`, `join-${topic}`))
  }
  socket.connect()
  return joined
}

/**
 * Pushes a command on the `commands` topic; resolves with the engine's reply
 * (`{ok: true, response}` or `{ok: false, code, reason}`), showing a notice on refusal.
 */
export function command(event, payload) {
  return new Promise((resolve) => {
    const ch = channels.commands
    if (!ch || ch.state !== 'joined') {
      const r = { ok: false, code: 'not_connected', reason: 'not connected to the engine; try again once connected' }
      notify('error', `${event} not sent: ${r.reason}`, `cmd-${event}`)
      return resolve(r)
    }
    ch.push(event, payload, PUSH_TIMEOUT_MS)
      .receive('ok', (response) => {
        clearNotice(`cmd-${event}`)
        resolve({ ok: true, response })
      })
      .receive('error', (resp) => {
        const r = { ok: false, code: (resp && resp.code) || 'error', reason: (resp && resp.reason) || 'refused' }
        notify('error', `The engine rejected ${event}: ${r.reason} (${r.code})`, `cmd-${event}`)
        resolve(r)
      })
      .receive('timeout', () => {
        const r = { ok: false, code: 'timeout', reason: `no reply within ${PUSH_TIMEOUT_MS / 1000} s` }
        notify('error', `${event}: ${r.reason}`, `cmd-${event}`)
        resolve(r)
      })
  })
}

/**
 * Asks the engine for the rules it runs (the `rules` command): definitions as loaded,
 * live thresholds and counters. Until it answers, the view shows the built-in defaults.
 */
export async function loadRules() {
  const r = await command('rules', {})
  if (!r.ok || !r.response || !Array.isArray(r.response.rules)) return r
  P.rules.clear()
  for (const d of r.response.rules) {
    P.rules.set(d.id, {
      id: d.id,
      name: d.name,
      kind: (d.kinds || []).join(', ') + (d.namespace ? ` in ${d.namespace}` : ''),
      when: (d.when || []).join(' and '),
      severity: d.severity,
      hint: d.hint,
      threshold: d.threshold,
      liveThreshold: null,
      fired: d.raised || 0,
      enabled: d.enabled,
    })
  }
  S.rulesSource = 'engine'
  P.dirty.add('rules')
  return r
}

/** Asks the engine for a snapshot of every resource (arrives on `state`). */
export function requestSnapshot() {
  S.resources = { ...S.resources, snapshot: 'requested' }
  return command('snapshot', {})
}

export function acknowledge(alert) {
  return command('ack_alert', { rule: alert.rule, key: alert.key })
}

// ---------------------------------------------------------------- metrics

async function scrapeMetrics() {
  try {
    const r = await fetch(`${S.engineUrl}/metrics`, { cache: 'no-store' })
    if (!r.ok) throw new Error(`HTTP ${r.status}`)
    const text = await r.text()
    const connections = {}
    for (const m of text.matchAll(/^ebbflow_channels_connections\{transport="(\w+)"\}\s+(\d+)/gm)) connections[m[1]] = Number(m[2])
    S.metrics = { connections, scrapedAt: Date.now(), error: '' }
  } catch (e) {
    S.metrics = { ...S.metrics, error: String(e.message || e) }
  }
}

// ---------------------------------------------------------------- start

let started = false
/** Connects once (called by the client plugin). */
export function startEngine(engineUrl) {
  if (started) return
  started = true
  S.engineUrl = engineUrl.replace(/\/$/, '')
  let user = sessionStorage.getItem('ebbflow-user')
  if (!user) {
    user = `dash-${Math.random().toString(16).slice(2, 6)}`
    sessionStorage.setItem('ebbflow-user', user)
  }
  S.user = user
  setConn()
  P.lastRateAt = Date.now()
  S.rules = Array.from(P.rules.values()).map((r) => ({ ...r }))
  setInterval(flush, FLUSH_MS)
  setInterval(scrapeMetrics, 2000)
  scrapeMetrics()
  joinPhoenix()
  openSse('main', SSE_TOPICS)
  // A first snapshot fills Resources; later changes come as deltas.
  const first = setInterval(() => {
    if (channels.commands && channels.commands.state === 'joined') {
      clearInterval(first)
      requestSnapshot()
      loadRules()
    }
  }, 200)
  // Test hook (tests/dashboard.rs): feed a raw message through the same path as the
  // transports, and read figures the browser test asserts on.
  window.__ebbflow = {
    receiveSse: (data) => onSseData(sse.main || {}, data, ''),
    receivePhoenix: (raw) => socket.decode(raw, (m) => dispatch('phoenix', m.topic, m.event, m.payload)),
    state: () => ({ conn: S.conn, stats: S.stats, malformed: P.malformed, lastIds: { main: sse.main && sse.main.lastId, schema: sse.schema && sse.schema.lastId }, resources: P.resources.size }),
    eventIds: () => P.eventIdLog.slice(),
    malformed: () => malformedLog.slice(),
    flushTimes: () => flushTimes.slice(),
  }
}
