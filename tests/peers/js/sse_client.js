// An EventSource (npm `eventsource` 2.x, which resends Last-Event-ID when it reconnects),
// driven by a Rust test. Usage: node sse_client.js http://127.0.0.1:PORT/events?topics=a
// Prints one JSON object per line; exits on "quit" from stdin.
const EventSource = require("eventsource");

const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const es = new EventSource(process.argv[2]);
es.onopen = () => out({ ev: "open" });
es.onerror = () => out({ ev: "error" });
es.onmessage = (m) => out({ ev: "message", id: m.lastEventId, data: JSON.parse(m.data) });
es.addEventListener("gap", (m) => out({ ev: "gap", data: JSON.parse(m.data) }));
process.stdin.on("data", (d) => {
  if (d.toString().includes("quit")) {
    es.close();
    process.exit(0);
  }
});
setTimeout(() => {
  out({ ev: "gave_up" });
  process.exit(2);
}, 60000);
